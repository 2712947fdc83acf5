#include <gtest/gtest.h>

#include "broadcaster/sse.h"

namespace {

using feedpipe::sse::format_comment;
using feedpipe::sse::format_event;
using feedpipe::sse::format_retry;

TEST(SseFormat, EventWithIdTypeAndData) {
  EXPECT_EQ(format_event(7, "job.completed", R"({"seq":7})"),
            "id: 7\nevent: job.completed\ndata: {\"seq\":7}\n\n");
}

TEST(SseFormat, MultiLineDataGetsOneDataLinePerLine) {
  EXPECT_EQ(format_event(1, "x", "a\nb\r\nc\rd"), "id: 1\nevent: x\ndata: a\ndata: b\ndata: c\ndata: d\n\n");
  // A trailing newline is a last, empty line, so the browser gets "a\n" back.
  EXPECT_EQ(format_event(2, "x", "a\n"), "id: 2\nevent: x\ndata: a\ndata: \n\n");
  EXPECT_EQ(format_event(3, "x", ""), "id: 3\nevent: x\ndata: \n\n");
}

TEST(SseFormat, EventNameCannotBreakTheFrame) {
  EXPECT_EQ(format_event(4, "evil\r\ndata: injected", "{}"),
            "id: 4\nevent: evil  data: injected\ndata: {}\n\n");
  EXPECT_EQ(format_event(5, "", "{}"), "id: 5\ndata: {}\n\n");
}

TEST(SseFormat, RetryAndComment) {
  EXPECT_EQ(format_retry(3000), "retry: 3000\n\n");
  EXPECT_EQ(format_retry(-1), "retry: 0\n\n");
  EXPECT_EQ(format_comment("ping"), ": ping\n\n");
  EXPECT_EQ(format_comment("two\nlines\r"), ": two lines \n\n");
}

}  // namespace
