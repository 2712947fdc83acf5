#include "consumer/parser/dates.h"

#include <cctype>
#include <cstdint>
#include <optional>
#include <utility>
#include <vector>

namespace feedpipe::parser {
namespace {

struct Fields {
  int year = -1, month = -1, day = -1, hour = 0, minute = 0, second = 0;
  int offset_minutes = 0;  // local time = UTC + offset
};

bool is_digit(char c) { return c >= '0' && c <= '9'; }
bool is_alpha(char c) { return std::isalpha(static_cast<unsigned char>(c)) != 0; }
char lower(char c) { return static_cast<char>(std::tolower(static_cast<unsigned char>(c))); }

std::string lowercase(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower(c);
  return out;
}

// Reads exactly `n` digits at `pos`.
std::optional<int> digits(std::string_view s, size_t& pos, size_t n) {
  if (pos + n > s.size()) return std::nullopt;
  int v = 0;
  for (size_t i = 0; i < n; ++i) {
    if (!is_digit(s[pos + i])) return std::nullopt;
    v = v * 10 + (s[pos + i] - '0');
  }
  pos += n;
  return v;
}

// Days since 1970-01-01 of a proleptic Gregorian date (Howard Hinnant's days_from_civil).
int64_t days_from_civil(int64_t y, unsigned m, unsigned d) {
  y -= m <= 2;
  const int64_t era = (y >= 0 ? y : y - 399) / 400;
  const unsigned yoe = static_cast<unsigned>(y - era * 400);
  const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
  const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + static_cast<int64_t>(doe) - 719468;
}

void civil_from_days(int64_t z, int& y, int& m, int& d) {
  z += 719468;
  const int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  const unsigned doe = static_cast<unsigned>(z - era * 146097);
  const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  const unsigned mp = (5 * doy + 2) / 153;
  d = static_cast<int>(doy - (153 * mp + 2) / 5 + 1);
  m = static_cast<int>(mp < 10 ? mp + 3 : mp - 9);
  y = static_cast<int>(yoe + era * 400 + (m <= 2));
}

int days_in_month(int y, int m) {
  static constexpr int kDays[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
  return m == 2 && leap ? 29 : kDays[m - 1];
}

std::string format(const Fields& f) {
  if (f.year < 1 || f.year > 9999 || f.month < 1 || f.month > 12 || f.day < 1 ||
      f.day > days_in_month(f.year, f.month) || f.hour > 24 || f.minute > 59 || f.second > 60 ||
      (f.hour == 24 && (f.minute || f.second)))
    return "";
  int second = f.second == 60 ? 59 : f.second;  // a leap second is not worth an error
  int64_t t = days_from_civil(f.year, f.month, f.day) * 86400 + f.hour * 3600 + f.minute * 60 +
              second - static_cast<int64_t>(f.offset_minutes) * 60;
  int64_t days = t >= 0 ? t / 86400 : (t - 86399) / 86400;
  int64_t rem = t - days * 86400;
  int y, m, d;
  civil_from_days(days, y, m, d);
  if (y < 1 || y > 9999) return "";
  // "YYYY-MM-DDTHH:MM:SSZ", written by hand (snprintf showed in the parse profile)
  std::string out = "0000-00-00T00:00:00Z";
  auto put = [&](size_t pos, int value, int width) {
    for (int k = width - 1; k >= 0; --k, value /= 10) out[pos + static_cast<size_t>(k)] = static_cast<char>('0' + value % 10);
  };
  put(0, y, 4);
  put(5, m, 2);
  put(8, d, 2);
  put(11, static_cast<int>(rem / 3600), 2);
  put(14, static_cast<int>(rem / 60 % 60), 2);
  put(17, static_cast<int>(rem % 60), 2);
  return out;
}

// "+05:30", "-0700", "+05", "Z" at `pos`, up to the end of the string.
bool numeric_zone(std::string_view s, size_t pos, int& offset) {
  if (pos == s.size()) return true;
  if ((s[pos] == 'Z' || s[pos] == 'z') && pos + 1 == s.size()) return offset = 0, true;
  if (s[pos] != '+' && s[pos] != '-') return false;
  int sign = s[pos] == '-' ? -1 : 1;
  ++pos;
  auto h = digits(s, pos, 2);
  if (!h) return false;
  int m = 0;
  if (pos < s.size() && s[pos] == ':') ++pos;
  if (pos < s.size()) {
    auto mm = digits(s, pos, 2);
    if (!mm) return false;
    m = *mm;
  }
  if (pos != s.size() || *h > 23 || m > 59) return false;
  offset = sign * (*h * 60 + m);
  return true;
}

// RFC 3339 / W3CDTF: "2024-01-02", "2024-01-02T03:04Z", "2024-01-02 03:04:05.123+01:00", and
// bare "2024" / "2024-01" (W3CDTF allows them). A missing zone is UTC.
std::string parse_iso(std::string_view s) {
  Fields f;
  size_t pos = 0;
  auto y = digits(s, pos, 4);
  if (!y) return "";
  f.year = *y;
  f.month = f.day = 1;
  if (pos == s.size()) return format(f);
  if (s[pos++] != '-') return "";
  auto mo = digits(s, pos, 2);
  if (!mo) return "";
  f.month = *mo;
  if (pos == s.size()) return format(f);
  if (s[pos++] != '-') return "";
  auto d = digits(s, pos, 2);
  if (!d) return "";
  f.day = *d;
  if (pos == s.size()) return format(f);
  if (s[pos] != 'T' && s[pos] != 't' && s[pos] != ' ') return "";
  ++pos;
  auto h = digits(s, pos, 2);
  if (!h || pos >= s.size() || s[pos++] != ':') return "";
  auto mi = digits(s, pos, 2);
  if (!mi) return "";
  f.hour = *h;
  f.minute = *mi;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    auto sec = digits(s, pos, 2);
    if (!sec) return "";
    f.second = *sec;
    if (pos < s.size() && (s[pos] == '.' || s[pos] == ',')) {
      ++pos;
      if (pos >= s.size() || !is_digit(s[pos])) return "";
      while (pos < s.size() && is_digit(s[pos])) ++pos;
    }
  }
  while (pos < s.size() && s[pos] == ' ') ++pos;  // "2024-01-02 03:04:05 +0100"
  if (!numeric_zone(s, pos, f.offset_minutes)) return "";
  return format(f);
}

std::optional<int> month_from_name(std::string_view word) {
  static constexpr std::string_view kMonths[] = {"jan", "feb", "mar", "apr", "may", "jun",
                                                 "jul", "aug", "sep", "oct", "nov", "dec"};
  std::string w = lowercase(word);
  if (w.size() < 3) return std::nullopt;
  static constexpr std::string_view kFull[] = {"january", "february", "march",     "april",
                                               "may",     "june",     "july",      "august",
                                               "september", "october", "november", "december"};
  for (int i = 0; i < 12; ++i) {
    if (w == kMonths[i] || w == kFull[i] || (i == 8 && w == "sept")) return i + 1;
  }
  // Feeds localize pubDate despite RFC 822: Portuguese, Spanish, German, French, Italian.
  struct Local { std::string_view name; int month; };
  static constexpr Local kLocal[] = {
      {"fev", 2}, {"abr", 4}, {"mai", 5}, {"ago", 8}, {"set", 9}, {"out", 10}, {"dez", 12},
      {"ene", 1}, {"dic", 12}, {"mär", 3}, {"mrz", 3}, {"okt", 10}, {"janv", 1}, {"févr", 2},
      {"fevr", 2}, {"mars", 3}, {"avr", 4}, {"juin", 6}, {"juil", 7}, {"août", 8}, {"aout", 8},
      {"déc", 12}, {"gen", 1}, {"mag", 5}, {"giu", 6}, {"lug", 7}, {"ott", 10}};
  for (const Local& l : kLocal)
    if (w == l.name) return l.month;
  return std::nullopt;
}

bool is_weekday(std::string_view word) {
  static constexpr std::string_view kDays[] = {"mon", "tue", "wed", "thu", "fri", "sat", "sun"};
  std::string w = lowercase(word);
  if (w.size() < 3) return false;
  for (auto d : kDays)
    if (w.substr(0, 3) == d) {
      static constexpr std::string_view kFull[] = {"monday", "tuesday", "wednesday", "thursday",
                                                   "friday", "saturday", "sunday", "tues",
                                                   "thur",   "thurs"};
      if (w.size() == 3) return true;
      for (auto f : kFull)
        if (w == f) return true;
    }
  return false;
}

// Named zones of RFC 822 and the usual extras, in minutes east of UTC.
std::optional<int> zone_from_name(std::string_view word) {
  std::string w = lowercase(word);
  struct Zone { std::string_view name; int minutes; };
  static constexpr Zone kZones[] = {
      {"ut", 0},         {"utc", 0},        {"gmt", 0},        {"z", 0},          {"est", -5 * 60},
      {"edt", -4 * 60},  {"cst", -6 * 60},  {"cdt", -5 * 60},  {"mst", -7 * 60},  {"mdt", -6 * 60},
      {"pst", -8 * 60},  {"pdt", -7 * 60},  {"akst", -9 * 60}, {"akdt", -8 * 60}, {"hst", -10 * 60},
      {"bst", 60},       {"cet", 60},       {"cest", 120},     {"eet", 120},      {"eest", 180},
      {"met", 60},       {"mest", 120},     {"wet", 0},        {"west", 60},      {"ist", 330},
      {"jst", 540},      {"kst", 540},      {"aest", 600},     {"aedt", 660},     {"nzst", 720},
      {"nzdt", 780},
  };
  for (const Zone& z : kZones)
    if (w == z.name) return z.minutes;
  // RFC 822 military zones: A-I = +1..+9, K-M = +10..+12, N-Y = -1..-12 (J is unused).
  if (w.size() == 1 && w[0] >= 'a' && w[0] <= 'y' && w[0] != 'j') {
    char c = w[0];
    if (c <= 'i') return (c - 'a' + 1) * 60;
    if (c <= 'm') return (c - 'k' + 10) * 60;
    return -(c - 'n' + 1) * 60;
  }
  return std::nullopt;
}

// RFC 822 / 1123 and their wild relatives, read token by token so that the order of the parts
// can vary: "Mon, 2 Jan 06 15:04 EST", "02 Jan 2006 15:04:05 +0000", "Jan 2, 2006 3:04:05 GMT",
// "Mon Jan 02 15:04:05 UTC 2006".
std::string parse_rfc822(std::string_view s) {
  std::vector<std::string_view> tokens;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == ',' || s[i] == '\t')) ++i;
    size_t start = i;
    while (i < s.size() && s[i] != ' ' && s[i] != ',' && s[i] != '\t') ++i;
    if (i > start) tokens.push_back(s.substr(start, i - start));
  }
  Fields f;
  bool have_time = false, have_zone = false;
  int pm = -1;  // -1 none, 0 am, 1 pm
  for (size_t t = 0; t < tokens.size(); ++t) {
    std::string_view tok = tokens[t];
    // "02-Jan-2006": split and treat the parts as tokens.
    size_t dash = tok.find('-');
    std::string head = lowercase(tok.substr(0, 3));
    if (dash != std::string_view::npos && dash > 0 && dash + 1 < tok.size() && head != "gmt" &&
        head != "utc" && (is_alpha(tok[0]) || is_alpha(tok[dash + 1]))) {
      tokens.insert(tokens.begin() + static_cast<long>(t) + 1, tok.substr(dash + 1));
      tok = tok.substr(0, dash);
    }
    if (tok.find(':') != std::string_view::npos && is_digit(tok[0])) {
      if (have_time) return "";
      size_t pos = 0;
      size_t hlen = tok.find(':');
      if (hlen == 0 || hlen > 2) return "";
      auto h = digits(tok, pos, hlen);
      ++pos;
      auto m = digits(tok, pos, 2);
      if (!h || !m) return "";
      f.hour = *h;
      f.minute = *m;
      if (pos < tok.size() && tok[pos] == ':') {
        ++pos;
        auto sec = digits(tok, pos, 2);
        if (!sec) return "";
        f.second = *sec;
        if (pos < tok.size() && tok[pos] == '.') {
          ++pos;
          while (pos < tok.size() && is_digit(tok[pos])) ++pos;
        }
      }
      if (pos < tok.size()) {  // "15:04:05Z", "15:04:05+0000"
        std::string_view rest = tok.substr(pos);
        if (auto z = zone_from_name(rest)) f.offset_minutes = *z;
        else if (!numeric_zone(tok, pos, f.offset_minutes)) return "";
        have_zone = true;
      }
      have_time = true;
    } else if ((tok[0] == '+' || tok[0] == '-') && tok.size() > 1 && is_digit(tok[1])) {
      if (have_zone) return "";
      if (tok.size() == 3 || tok.size() == 5 || tok.size() == 6) {
        if (!numeric_zone(tok, 0, f.offset_minutes)) return "";
      } else {
        return "";
      }
      have_zone = true;
    } else if (is_digit(tok[0])) {
      size_t pos = 0;
      while (pos < tok.size() && is_digit(tok[pos])) ++pos;
      std::string_view suffix = tok.substr(pos);
      std::string lsuffix = lowercase(suffix);
      if (!suffix.empty() && lsuffix != "st" && lsuffix != "nd" && lsuffix != "rd" &&
          lsuffix != "th" && lsuffix != ".")
        return "";
      if (pos > 4) return "";  // no date field has more digits (and the value must fit an int)
      int value = 0;
      for (size_t k = 0; k < pos; ++k) value = value * 10 + (tok[k] - '0');
      if (pos == 4 && f.year < 0) f.year = value;
      else if (pos <= 2 && f.day < 0) f.day = value;
      else if (pos == 2 && f.year < 0) f.year = value < 50 ? 2000 + value : 1900 + value;  // RFC 2822 4.3
      else return "";
    } else if (is_alpha(tok[0])) {
      std::string l = lowercase(tok);
      if (l.back() == '.') l.pop_back();
      if (auto m = month_from_name(l); m && f.month < 0) {
        f.month = *m;
      } else if (is_weekday(l) || (t == 0 && l.size() <= 9 && !zone_from_name(l))) {
        // ignored: the date says which day it is (the first word, in whatever language)
      } else if (l == "am" || l == "pm") {
        pm = l == "pm";
      } else if (auto z = zone_from_name(l); z && !have_zone) {
        f.offset_minutes = *z;
        have_zone = true;
        // "GMT+0200", "UTC-5": a numeric offset following a zone name
        if (t + 1 < tokens.size() && (tokens[t + 1][0] == '+' || tokens[t + 1][0] == '-')) have_zone = false;
      } else if ((l.substr(0, 3) == "gmt" || l.substr(0, 3) == "utc") && l.size() > 3 && !have_zone) {
        if (!numeric_zone(tok, 3, f.offset_minutes)) return "";
        have_zone = true;
      } else {
        return "";
      }
    } else if (tok == "(" || tok[0] == '(') {
      break;  // a trailing comment such as "(PST)"
    } else {
      return "";
    }
  }
  if (f.year < 0 || f.month < 0 || f.day < 0) return "";
  if (pm >= 0) {
    if (f.hour < 1 || f.hour > 12) return "";
    f.hour = f.hour % 12 + (pm ? 12 : 0);
  }
  return format(f);
}

// The canonical RFC 822 form, which nearly every pubDate uses, read directly:
// "Mon, 02 Jan 2006 15:04:05 +0000" (weekday optional, one- or two-digit day, seconds
// optional, a numeric zone or GMT/UT/UTC/Z), English names capitalized as the RFC writes them.
// Returns nullopt for anything else, which parse_rfc822() then reads token by token (to the
// same result for the text this accepts).
std::optional<std::string> parse_rfc822_canonical(std::string_view s) {
  size_t pos = 0;
  auto word3 = [&](std::string_view word, const char (*names)[4], int count) {
    for (int i = 0; i < count; ++i)
      if (word == names[i]) return i;
    return -1;
  };
  static constexpr char kDays[7][4] = {"Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"};
  static constexpr char kMonths[12][4] = {"Jan", "Feb", "Mar", "Apr", "May", "Jun",
                                          "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"};
  if (s.size() >= 5 && !is_digit(s[0])) {
    if (word3(s.substr(0, 3), kDays, 7) < 0 || s[3] != ',' || s[4] != ' ') return std::nullopt;
    pos = 5;
  }
  Fields f;
  size_t day_len = pos + 1 < s.size() && is_digit(s[pos + 1]) ? 2 : 1;
  auto day = digits(s, pos, day_len);
  if (!day || pos + 5 > s.size() || s[pos] != ' ' || s[pos + 4] != ' ') return std::nullopt;
  int month = word3(s.substr(pos + 1, 3), kMonths, 12);
  if (month < 0) return std::nullopt;
  pos += 5;
  auto year = digits(s, pos, 4);
  if (!year || pos >= s.size() || s[pos] != ' ') return std::nullopt;
  ++pos;
  auto hour = digits(s, pos, 2);
  if (!hour || pos >= s.size() || s[pos] != ':') return std::nullopt;
  ++pos;
  auto minute = digits(s, pos, 2);
  if (!minute) return std::nullopt;
  if (pos < s.size() && s[pos] == ':') {
    ++pos;
    auto second = digits(s, pos, 2);
    if (!second) return std::nullopt;
    f.second = *second;
  }
  if (pos >= s.size() || s[pos] != ' ') return std::nullopt;
  std::string_view zone = s.substr(pos + 1);
  if (zone == "GMT" || zone == "UT" || zone == "UTC" || zone == "Z") {
    f.offset_minutes = 0;
  } else if (zone.size() == 5 && (zone[0] == '+' || zone[0] == '-') && is_digit(zone[1]) &&
             is_digit(zone[2]) && is_digit(zone[3]) && is_digit(zone[4])) {
    if (!numeric_zone(zone, 0, f.offset_minutes)) return std::nullopt;
  } else {
    return std::nullopt;
  }
  f.day = *day;
  f.month = month + 1;
  f.year = *year;
  f.hour = *hour;
  f.minute = *minute;
  return format(f);
}

}  // namespace

std::string parse_date(std::string_view text) {
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.front()))) text.remove_prefix(1);
  while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back()))) text.remove_suffix(1);
  if (text.empty()) return "";
  if (text.size() >= 4 && is_digit(text[0]) && is_digit(text[1]) && is_digit(text[2]) &&
      is_digit(text[3])) {
    if (std::string iso = parse_iso(text); !iso.empty()) return iso;
  }
  // An ISO date sometimes hides in a pubDate after a weekday: "Tue, 2024-01-02T03:04:05Z".
  if (auto pos = text.find_first_of("0123456789"); pos != std::string_view::npos && pos > 0) {
    std::string_view rest = text.substr(pos);
    if (rest.size() >= 10 && rest[4] == '-' && rest[7] == '-')
      if (std::string iso = parse_iso(rest); !iso.empty()) return iso;
  }
  if (auto canonical = parse_rfc822_canonical(text)) return std::move(*canonical);
  return parse_rfc822(text);
}

}  // namespace feedpipe::parser
