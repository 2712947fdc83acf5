# embed_files(NAME DIR GLOB SYMBOL) generates ${CMAKE_BINARY_DIR}/embedded_NAME.cpp defining
#   const std::vector<feedpipe::EmbeddedFile>& SYMBOL();
# with the contents of every file in DIR matching GLOB, regenerated when any of them changes.
function(embed_files name dir glob symbol)
  file(GLOB files CONFIGURE_DEPENDS "${dir}/${glob}")
  list(SORT files)
  set(out "${CMAKE_CURRENT_BINARY_DIR}/embedded_${name}.cpp")
  string(REPLACE ";" "|" files_arg "${files}")  # a list would split into several arguments
  add_custom_command(
    OUTPUT "${out}"
    COMMAND ${CMAKE_COMMAND} -DOUT=${out} -DSYMBOL=${symbol} "-DFILES=${files_arg}"
            -P "${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed_run.cmake"
    DEPENDS ${files} "${CMAKE_CURRENT_SOURCE_DIR}/cmake/embed_run.cmake"
    COMMENT "Embedding ${name}"
    VERBATIM)
endfunction()
