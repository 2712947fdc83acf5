# feedpipe: build on Debian 12, run on slim Debian 12 with only the runtime libraries.
FROM debian:12 AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config librdkafka-dev libcpp-httplib-dev libcurl4-openssl-dev \
      libpugixml-dev libsqlite3-dev libspdlog-dev nlohmann-json3-dev zlib1g-dev libjemalloc-dev \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt ./
COPY cmake cmake
COPY common common
COPY producer producer
COPY consumer consumer
COPY broadcaster broadcaster
COPY commands commands
COPY migrations migrations
COPY web web
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DFEEDPIPE_BUILD_TESTS=OFF \
    && cmake --build build -j"$(nproc)" --target feedpipe

FROM debian:12-slim
RUN apt-get update && apt-get install -y --no-install-recommends \
      librdkafka1 librdkafka++1 libcpp-httplib0.11 libcurl4 libpugixml1v5 libsqlite3-0 \
      libspdlog1.10 libjemalloc2 ca-certificates curl \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /data feedpipe \
    && mkdir -p /data && chown feedpipe /data
COPY --from=build /src/build/feedpipe /usr/local/bin/feedpipe
USER feedpipe
WORKDIR /data
# No FEEDPIPE_DB here: consumers and broadcasters run without a database in the many-hosts
# shape; compose.yaml gives it to the roles on the store volume (the default ./feedpipe.db of
# the other commands is /data/feedpipe.db in this directory anyway).
ENTRYPOINT ["feedpipe"]
CMD ["--help"]
