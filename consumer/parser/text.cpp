#include "consumer/parser/text.h"

#include <algorithm>
#include <cstdint>
#include <iterator>
#include <utility>

#include "consumer/parser/xml_util.h"

namespace feedpipe::parser {
namespace {

// HTML 4's named character references (what Python's html.entities calls name2codepoint) plus
// &apos;, sorted by name for binary search. Feeds use them freely although XML declares none.
constexpr std::pair<std::string_view, char32_t> kEntities[] = {
    {"AElig", 198}, {"Aacute", 193}, {"Acirc", 194}, {"Agrave", 192}, {"Alpha", 913},
    {"Aring", 197}, {"Atilde", 195}, {"Auml", 196}, {"Beta", 914}, {"Ccedil", 199}, {"Chi", 935},
    {"Dagger", 8225}, {"Delta", 916}, {"ETH", 208}, {"Eacute", 201}, {"Ecirc", 202},
    {"Egrave", 200}, {"Epsilon", 917}, {"Eta", 919}, {"Euml", 203}, {"Gamma", 915}, {"Iacute", 205},
    {"Icirc", 206}, {"Igrave", 204}, {"Iota", 921}, {"Iuml", 207}, {"Kappa", 922}, {"Lambda", 923},
    {"Mu", 924}, {"Ntilde", 209}, {"Nu", 925}, {"OElig", 338}, {"Oacute", 211}, {"Ocirc", 212},
    {"Ograve", 210}, {"Omega", 937}, {"Omicron", 927}, {"Oslash", 216}, {"Otilde", 213},
    {"Ouml", 214}, {"Phi", 934}, {"Pi", 928}, {"Prime", 8243}, {"Psi", 936}, {"Rho", 929},
    {"Scaron", 352}, {"Sigma", 931}, {"THORN", 222}, {"Tau", 932}, {"Theta", 920}, {"Uacute", 218},
    {"Ucirc", 219}, {"Ugrave", 217}, {"Upsilon", 933}, {"Uuml", 220}, {"Xi", 926}, {"Yacute", 221},
    {"Yuml", 376}, {"Zeta", 918}, {"aacute", 225}, {"acirc", 226}, {"acute", 180}, {"aelig", 230},
    {"agrave", 224}, {"alefsym", 8501}, {"alpha", 945}, {"amp", 38}, {"and", 8743}, {"ang", 8736},
    {"apos", 39}, {"aring", 229}, {"asymp", 8776}, {"atilde", 227}, {"auml", 228}, {"bdquo", 8222},
    {"beta", 946}, {"brvbar", 166}, {"bull", 8226}, {"cap", 8745}, {"ccedil", 231}, {"cedil", 184},
    {"cent", 162}, {"chi", 967}, {"circ", 710}, {"clubs", 9827}, {"cong", 8773}, {"copy", 169},
    {"crarr", 8629}, {"cup", 8746}, {"curren", 164}, {"dArr", 8659}, {"dagger", 8224},
    {"darr", 8595}, {"deg", 176}, {"delta", 948}, {"diams", 9830}, {"divide", 247}, {"eacute", 233},
    {"ecirc", 234}, {"egrave", 232}, {"empty", 8709}, {"emsp", 8195}, {"ensp", 8194},
    {"epsilon", 949}, {"equiv", 8801}, {"eta", 951}, {"eth", 240}, {"euml", 235}, {"euro", 8364},
    {"exist", 8707}, {"fnof", 402}, {"forall", 8704}, {"frac12", 189}, {"frac14", 188},
    {"frac34", 190}, {"frasl", 8260}, {"gamma", 947}, {"ge", 8805}, {"gt", 62}, {"hArr", 8660},
    {"harr", 8596}, {"hearts", 9829}, {"hellip", 8230}, {"iacute", 237}, {"icirc", 238},
    {"iexcl", 161}, {"igrave", 236}, {"image", 8465}, {"infin", 8734}, {"int", 8747}, {"iota", 953},
    {"iquest", 191}, {"isin", 8712}, {"iuml", 239}, {"kappa", 954}, {"lArr", 8656}, {"lambda", 955},
    {"lang", 9001}, {"laquo", 171}, {"larr", 8592}, {"lceil", 8968}, {"ldquo", 8220}, {"le", 8804},
    {"lfloor", 8970}, {"lowast", 8727}, {"loz", 9674}, {"lrm", 8206}, {"lsaquo", 8249},
    {"lsquo", 8216}, {"lt", 60}, {"macr", 175}, {"mdash", 8212}, {"micro", 181}, {"middot", 183},
    {"minus", 8722}, {"mu", 956}, {"nabla", 8711}, {"nbsp", 160}, {"ndash", 8211}, {"ne", 8800},
    {"ni", 8715}, {"not", 172}, {"notin", 8713}, {"nsub", 8836}, {"ntilde", 241}, {"nu", 957},
    {"oacute", 243}, {"ocirc", 244}, {"oelig", 339}, {"ograve", 242}, {"oline", 8254},
    {"omega", 969}, {"omicron", 959}, {"oplus", 8853}, {"or", 8744}, {"ordf", 170}, {"ordm", 186},
    {"oslash", 248}, {"otilde", 245}, {"otimes", 8855}, {"ouml", 246}, {"para", 182},
    {"part", 8706}, {"permil", 8240}, {"perp", 8869}, {"phi", 966}, {"pi", 960}, {"piv", 982},
    {"plusmn", 177}, {"pound", 163}, {"prime", 8242}, {"prod", 8719}, {"prop", 8733}, {"psi", 968},
    {"quot", 34}, {"rArr", 8658}, {"radic", 8730}, {"rang", 9002}, {"raquo", 187}, {"rarr", 8594},
    {"rceil", 8969}, {"rdquo", 8221}, {"real", 8476}, {"reg", 174}, {"rfloor", 8971}, {"rho", 961},
    {"rlm", 8207}, {"rsaquo", 8250}, {"rsquo", 8217}, {"sbquo", 8218}, {"scaron", 353},
    {"sdot", 8901}, {"sect", 167}, {"shy", 173}, {"sigma", 963}, {"sigmaf", 962}, {"sim", 8764},
    {"spades", 9824}, {"sub", 8834}, {"sube", 8838}, {"sum", 8721}, {"sup", 8835}, {"sup1", 185},
    {"sup2", 178}, {"sup3", 179}, {"supe", 8839}, {"szlig", 223}, {"tau", 964}, {"there4", 8756},
    {"theta", 952}, {"thetasym", 977}, {"thinsp", 8201}, {"thorn", 254}, {"tilde", 732},
    {"times", 215}, {"trade", 8482}, {"uArr", 8657}, {"uacute", 250}, {"uarr", 8593},
    {"ucirc", 251}, {"ugrave", 249}, {"uml", 168}, {"upsih", 978}, {"upsilon", 965}, {"uuml", 252},
    {"weierp", 8472}, {"xi", 958}, {"yacute", 253}, {"yen", 165}, {"yuml", 255}, {"zeta", 950},
    {"zwj", 8205}, {"zwnj", 8204},
};

bool is_space_byte(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

// Removes the tags of an HTML fragment, keeping its character data. A `>` inside a quoted
// attribute value does not end the tag.
std::string strip_tags(std::string_view html) {
  std::string out;
  bool in_tag = false;
  char quote = 0;
  for (char c : html) {
    if (in_tag) {
      if (quote) {
        if (c == quote) quote = 0;
      } else if (c == '"' || c == '\'') {
        quote = c;
      } else if (c == '>') {
        in_tag = false;
      }
    } else if (c == '<') {
      in_tag = true;
    } else {
      out += c;
    }
  }
  return out;
}

// Base64 (Atom 0.3 mode="base64"); white space ignored. nullopt when it is not base64.
std::optional<std::string> decode_base64(std::string_view text) {
  std::string out;
  uint32_t acc = 0;
  int bits = 0;
  for (char c : text) {
    int v;
    if (c >= 'A' && c <= 'Z') v = c - 'A';
    else if (c >= 'a' && c <= 'z') v = c - 'a' + 26;
    else if (c >= '0' && c <= '9') v = c - '0' + 52;
    else if (c == '+' || c == '-') v = 62;
    else if (c == '/' || c == '_') v = 63;
    else if (c == '=') break;
    else if (c == ' ' || c == '\t' || c == '\r' || c == '\n') continue;
    else return std::nullopt;
    acc = (acc << 6) | static_cast<uint32_t>(v);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += static_cast<char>((acc >> bits) & 0xFF);
    }
  }
  return out;
}

// Valid UTF-8 with no control characters other than white space: decoded base64 is used only then.
bool is_clean_utf8(std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    auto b = static_cast<unsigned char>(s[i]);
    if (b < 0x20 && b != '\t' && b != '\n' && b != '\r') return false;
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xE ? 3 : (b >> 3) == 0x1E ? 4 : 0;
    if (len == 0 || i + len > s.size()) return false;
    for (size_t k = 1; k < len; ++k)
      if ((static_cast<unsigned char>(s[i + k]) >> 6) != 0x2) return false;
    i += len;
  }
  return true;
}

}  // namespace

std::string trim(std::string_view text) { return std::string(trim_view(text)); }

void trim_in_place(std::string& text) {
  std::string_view t = trim_view(text);
  if (t.size() == text.size()) return;
  size_t front = static_cast<size_t>(t.data() - text.data());
  text.resize(front + t.size());
  text.erase(0, front);
}

std::string_view trim_view(std::string_view text) {
  // The no-break space (U+00A0, "\xC2\xA0" in UTF-8) often pads titles that came from &nbsp;.
  for (;;) {
    if (!text.empty() && is_space_byte(text.front())) text.remove_prefix(1);
    else if (text.substr(0, 2) == "\xC2\xA0") text.remove_prefix(2);
    else break;
  }
  for (;;) {
    if (!text.empty() && is_space_byte(text.back())) text.remove_suffix(1);
    else if (text.size() >= 2 && text.substr(text.size() - 2) == "\xC2\xA0") text.remove_suffix(2);
    else break;
  }
  return text;
}

std::optional<char32_t> html_entity(std::string_view name) {
  auto it = std::lower_bound(std::begin(kEntities), std::end(kEntities), name,
                             [](const auto& entry, std::string_view n) { return entry.first < n; });
  if (it == std::end(kEntities) || it->first != name) return std::nullopt;
  return it->second;
}

char32_t demoronize(char32_t cp) {
  static constexpr char32_t k1252[32] = {
      0x20AC, 0x81,   0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021, 0x02C6, 0x2030, 0x0160,
      0x2039, 0x0152, 0x8D,   0x017D, 0x8F,   0x90,   0x2018, 0x2019, 0x201C, 0x201D, 0x2022,
      0x2013, 0x2014, 0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0x9D,   0x017E, 0x0178};
  return cp >= 0x80 && cp <= 0x9F ? k1252[cp - 0x80] : cp;
}

void append_utf8(std::string& out, char32_t cp) {
  if (cp == 0 || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) cp = 0xFFFD;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xC0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xE0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  } else {
    out += static_cast<char>(0xF0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
    out += static_cast<char>(0x80 | (cp & 0x3F));
  }
}

std::string decode_entities(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  size_t i = 0;
  while (i < text.size()) {
    size_t amp = text.find('&', i);
    if (amp == std::string_view::npos) break;
    out.append(text.substr(i, amp - i));
    size_t semi = text.find(';', amp);
    // Longest HTML entity name is 8 characters; numeric ones fit in 10.
    if (semi == std::string_view::npos || semi - amp > 12) {
      out += '&';
      i = amp + 1;
      continue;
    }
    std::string_view ref = text.substr(amp + 1, semi - amp - 1);
    std::optional<char32_t> cp;
    if (ref.size() > 1 && ref[0] == '#') {
      bool hex = ref[1] == 'x' || ref[1] == 'X';
      std::string_view digits = ref.substr(hex ? 2 : 1);
      char32_t value = 0;
      bool ok = !digits.empty();
      for (char c : digits) {
        int d = (c >= '0' && c <= '9') ? c - '0'
                : (hex && c >= 'a' && c <= 'f') ? c - 'a' + 10
                : (hex && c >= 'A' && c <= 'F') ? c - 'A' + 10
                                                : -1;
        if (d < 0) ok = false;
        else value = std::min<char32_t>(value * (hex ? 16 : 10) + d, 0x110000);
      }
      if (ok) cp = value;
    } else {
      cp = html_entity(ref);
    }
    if (cp) {
      append_utf8(out, *cp);
      i = semi + 1;
    } else {
      out += '&';
      i = amp + 1;
    }
  }
  if (i < text.size()) out.append(text.substr(i));
  return out;
}

std::string atom_text(pugi::xml_node node, bool plain) {
  std::string_view type = node.attribute("type").value();
  std::string_view mode = node.attribute("mode").value();  // Atom 0.3
  bool xhtml = type == "xhtml" || type == "application/xhtml+xml" || mode == "xml";
  bool html = type == "html" || type == "text/html" || mode == "escaped";
  // Atom 1.0 carries other media types base64-encoded; 0.3 says so with mode="base64".
  bool base64 = mode == "base64" ||
                (type.find('/') != std::string_view::npos && type.substr(0, 5) != "text/" &&
                 type.find("xml") == std::string_view::npos);
  if (base64) {
    if (auto decoded = decode_base64(xml::all_text(node)); decoded && is_clean_utf8(*decoded)) {
      std::string value = trim(*decoded);
      bool markup = html || xhtml || type.empty() || type.find("html") != std::string_view::npos;
      return plain && markup ? trim(decode_entities(strip_tags(value))) : value;
    }
  }
  // The first element child, when the construct holds nothing but it (and white space).
  pugi::xml_node only;
  for (pugi::xml_node c = node.first_child(); c; c = c.next_sibling()) {
    if (c.type() == pugi::node_element && !only) only = c;
    else if (c.type() == pugi::node_element || trim(c.value()).size()) {
      only = pugi::xml_node();
      break;
    }
  }
  if (xhtml) {
    // Atom 1.0's xhtml wraps its content in a div that is not part of it; 0.3's does not.
    bool wrapped = type == "xhtml" && only && xml::local_name(only) == "div";
    pugi::xml_node body = wrapped ? only : node;
    return plain ? xml::all_text(body) : trim(xml::inner_markup(body));
  }
  if (html && only && xml::local_name(only) == "div" && xml::namespace_of(only) == xml::ns::xhtml &&
      !only.find_child([](pugi::xml_node c) { return c.type() == pugi::node_element; })) {
    // Escaped HTML wrapped in an XHTML div (TypePad): the div's text is the HTML.
    std::string value = xml::all_text(only);
    return plain ? trim(decode_entities(strip_tags(value))) : value;
  }
  if (plain) {
    std::string value = xml::all_text(node);
    return html ? trim(decode_entities(strip_tags(value))) : value;
  }
  return xml::text(node);
}

}  // namespace feedpipe::parser
