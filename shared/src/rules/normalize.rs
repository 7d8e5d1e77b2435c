//! The text both sides of a literal rule are compared in.
//!
//! A pre-filled `wa.me` message is often edited, retyped or pasted with stray spaces and a
//! different case; admins type their patterns by hand. So both the pattern and the message go
//! through the same normalisation: every run of Unicode whitespace becomes one space, the ends
//! are trimmed and, unless the rule is case-sensitive, the text is case-folded.
//!
//! Case folding is `char::to_lowercase` plus the full-folding cases where lower-casing is not
//! enough (`ß`/`ẞ` → `ss`, final `ς` → `σ`, long `ſ` → `s`, the Latin ligatures, the Greek
//! symbol variants). Accents are kept: `anúncio` and `anuncio` are different words. Text is not
//! converted to a Unicode normal form (NFC); WhatsApp clients send composed characters.

/// `text` normalised: whitespace runs collapsed to one space, trimmed, and case-folded when
/// `fold` is set.
pub fn normalize(text: &str, fold: bool) -> String {
    let mut out = String::with_capacity(text.len());
    normalize_into(text, fold, &mut out);
    out
}

/// [`normalize`] into a caller's buffer (cleared first), so a hot loop can reuse it. One pass
/// over the text; ASCII characters take a short path.
pub fn normalize_into(text: &str, fold: bool, out: &mut String) {
    out.clear();
    out.reserve(text.len());
    // A space is owed when whitespace was seen after some output; it is only written once the
    // next visible character arrives, which trims the end for free.
    let mut space_owed = false;
    for c in text.chars() {
        if c.is_ascii() {
            if matches!(c, ' ' | '\t' | '\n' | '\u{0B}' | '\u{0C}' | '\r') {
                space_owed = !out.is_empty();
                continue;
            }
            if space_owed {
                out.push(' ');
                space_owed = false;
            }
            out.push(if fold { c.to_ascii_lowercase() } else { c });
        } else {
            if c.is_whitespace() {
                space_owed = !out.is_empty();
                continue;
            }
            if space_owed {
                out.push(' ');
                space_owed = false;
            }
            if fold {
                fold_into(c, out);
            } else {
                out.push(c);
            }
        }
    }
}

fn fold_into(c: char, out: &mut String) {
    let special: &str = match c {
        'ß' | 'ẞ' => "ss",
        'ς' => "σ",
        'ſ' => "s",
        'ŉ' => "ʼn",
        'ﬀ' => "ff",
        'ﬁ' => "fi",
        'ﬂ' => "fl",
        'ﬃ' => "ffi",
        'ﬄ' => "ffl",
        'ﬅ' | 'ﬆ' => "st",
        'ϐ' => "β",
        'ϑ' => "θ",
        'ϕ' => "φ",
        'ϖ' => "π",
        'ϰ' => "κ",
        'ϱ' => "ρ",
        'ϵ' => "ε",
        'ẛ' => "ṡ",
        '\u{345}' => "ι",
        _ => {
            out.extend(c.to_lowercase());
            return;
        }
    };
    out.push_str(special);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whitespace_runs_collapse_and_ends_trim() {
        assert_eq!(
            normalize("  Hi,\t I saw\n\n your  ad!  ", false),
            "Hi, I saw your ad!"
        );
        // No-break space, ideographic space, line separator, em space: all whitespace.
        assert_eq!(
            normalize("\u{a0}a\u{3000}b\u{2028}\u{2003} c\u{a0}", false),
            "a b c"
        );
        assert_eq!(normalize(" \t\r\n ", true), "");
        assert_eq!(normalize("", true), "");
        // Zero-width space is not whitespace; it stays.
        assert_eq!(normalize("a\u{200b}b", false), "a\u{200b}b");
    }

    #[test]
    fn folding_lowercases_and_keeps_accents() {
        assert_eq!(
            normalize("Hi, I saw your TIKTOK  ad!", true),
            "hi, i saw your tiktok ad!"
        );
        assert_eq!(normalize("ANÚNCIO no TikTok", true), "anúncio no tiktok");
        assert_ne!(normalize("anúncio", true), normalize("anuncio", true));
        assert_eq!(normalize("ÇÃÕ Éé", true), "çãõ éé");
        assert_eq!(normalize("ÇÃÕ Éé", false), "ÇÃÕ Éé");
    }

    #[test]
    fn folding_covers_the_cases_lowercase_misses() {
        assert_eq!(normalize("STRASSE", true), normalize("Straße", true));
        assert_eq!(normalize("STRAẞE", true), "strasse");
        assert_eq!(normalize("ΟΔΟΣ", true), normalize("οδος", true));
        assert_eq!(normalize("ſale", true), "sale");
        assert_eq!(normalize("ﬁnal oﬀer", true), "final offer");
        // Kelvin sign and Ångström sign fold like the letters they look like.
        assert_eq!(normalize("\u{212a}\u{212b}", true), "kå");
        // Dotted capital I lower-cases to i + combining dot, as in Unicode full folding.
        assert_eq!(normalize("İ", true), "i\u{307}");
    }

    #[test]
    fn buffer_is_reused() {
        let mut buffer = String::from("left over");
        normalize_into(" A  B ", true, &mut buffer);
        assert_eq!(buffer, "a b");
    }
}
