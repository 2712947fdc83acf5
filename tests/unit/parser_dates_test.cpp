#include <gtest/gtest.h>

#include "consumer/parser/dates.h"

namespace feedpipe::parser {
namespace {

struct DateCase {
  const char* text;
  const char* want;  // "" = unknown
};

class ParserDates : public testing::TestWithParam<DateCase> {};

TEST_P(ParserDates, Normalizes) { EXPECT_EQ(parse_date(GetParam().text), GetParam().want) << GetParam().text; }

INSTANTIATE_TEST_SUITE_P(
    ParserRfc822, ParserDates,
    testing::Values(DateCase{"Tue, 03 Jun 2003 09:39:21 GMT", "2003-06-03T09:39:21Z"},
                    DateCase{"Tue, 03 Jun 2003 09:39:21 +0000", "2003-06-03T09:39:21Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 -0700", "2006-01-02T22:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 +05:30", "2006-01-02T09:34:05Z"},
                    DateCase{"Mon, 2 Jan 2006 15:04:05 EST", "2006-01-02T20:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 EDT", "2006-01-02T19:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 CST", "2006-01-02T21:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 CDT", "2006-01-02T20:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 MST", "2006-01-02T22:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 MDT", "2006-01-02T21:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 PST", "2006-01-02T23:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 23:04:05 PDT", "2006-01-03T06:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 UT", "2006-01-02T15:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 Z", "2006-01-02T15:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04:05 A", "2006-01-02T14:04:05Z"},  // military
                    DateCase{"Mon, 02 Jan 2006 15:04:05 N", "2006-01-02T16:04:05Z"},
                    DateCase{"Mon, 02 Jan 06 15:04:05 GMT", "2006-01-02T15:04:05Z"},  // 2-digit year
                    DateCase{"Sat, 01 Jan 99 00:00:00 GMT", "1999-01-01T00:00:00Z"},
                    DateCase{"Mon, 02 Jan 2006 15:04 GMT", "2006-01-02T15:04:00Z"},  // no seconds
                    DateCase{"02 Jan 2006 15:04:05 GMT", "2006-01-02T15:04:05Z"},    // no weekday
                    DateCase{"2 January 2006 15:04:05 +0100", "2006-01-02T14:04:05Z"},
                    DateCase{"Mon, 02 Jan 2006", "2006-01-02T00:00:00Z"},            // no time
                    DateCase{"Mon, 02 Jan 2006 15:04:05", "2006-01-02T15:04:05Z"},   // no zone
                    DateCase{"Seg, 24 Set 2018 19:18:49 -0300", "2018-09-24T22:18:49Z"},
                    DateCase{"Mon Jan 02 15:04:05 UTC 2006", "2006-01-02T15:04:05Z"},
                    DateCase{"Tue, 2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"},  // ISO in pubDate
                    DateCase{"Mon, 31 Dec 2012 23:30:00 -0100", "2013-01-01T00:30:00Z"}));

INSTANTIATE_TEST_SUITE_P(
    ParserRfc3339, ParserDates,
    testing::Values(DateCase{"2024-01-02T03:04:05Z", "2024-01-02T03:04:05Z"},
                    DateCase{"2024-01-02T03:04:05.123456Z", "2024-01-02T03:04:05Z"},
                    DateCase{"2024-01-02T03:04:05+01:00", "2024-01-02T02:04:05Z"},
                    DateCase{"2024-01-02T03:04:05-0800", "2024-01-02T11:04:05Z"},
                    DateCase{"2024-01-02T03:04Z", "2024-01-02T03:04:00Z"},
                    DateCase{"2024-01-02 03:04:05", "2024-01-02T03:04:05Z"},
                    DateCase{"2024-01-02", "2024-01-02T00:00:00Z"},
                    DateCase{"2024-02", "2024-02-01T00:00:00Z"},
                    DateCase{"  2024-01-02T03:04:05z \n", "2024-01-02T03:04:05Z"},
                    DateCase{"2000-02-29T12:00:00Z", "2000-02-29T12:00:00Z"}));

INSTANTIATE_TEST_SUITE_P(
    ParserUnknown, ParserDates,
    testing::Values(DateCase{"", ""}, DateCase{"yesterday", ""}, DateCase{"not a date at all", ""},
                    DateCase{"2023-02-29T00:00:00Z", ""}, DateCase{"2024-13-01", ""},
                    DateCase{"Mon, 32 Jan 2006 15:04:05 GMT", ""},
                    DateCase{"Mon, 02 Foo 2006 15:04:05 GMT", ""}, DateCase{"15:04:05", ""},
                    DateCase{"2024-01-02T25:00:00Z", ""},
                    // a run of digits too long for any date field (overflowed an int; found by fuzzing)
                    DateCase{"1 Jan 20200000000000", ""}, DateCase{"99999999999999999999 Jan 2020", ""}));

}  // namespace
}  // namespace feedpipe::parser
