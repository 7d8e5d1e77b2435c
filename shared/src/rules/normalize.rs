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
    let mut out = Vec::with_capacity(text.len());
    normalize_into(text, fold, &mut out);
    String::from_utf8(out).expect("normalisation writes whole UTF-8 characters")
}

/// [`normalize`] as UTF-8 bytes into a caller's buffer (cleared first), so compiled rules can reuse
/// one buffer for every message. One pass; ASCII bytes go through a lookup table, other
/// characters are decoded one by one.
pub(crate) fn normalize_into(text: &str, fold: bool, out: &mut Vec<u8>) {
    out.clear();
    out.reserve(text.len());
    let table = if fold { &ASCII_FOLDED } else { &ASCII_KEPT };
    let bytes = text.as_bytes();
    if bytes.is_ascii() {
        // The common case, without per-byte capacity checks: the output is never longer.
        out.resize(bytes.len(), 0);
        let mut written = 0;
        for &byte in bytes {
            let mapped = table[byte as usize];
            if mapped == WHITESPACE {
                if written > 0 && out[written - 1] != b' ' {
                    out[written] = b' ';
                    written += 1;
                }
            } else {
                out[written] = mapped;
                written += 1;
            }
        }
        if written > 0 && out[written - 1] == b' ' {
            written -= 1;
        }
        out.truncate(written);
        return;
    }
    // A space is owed when whitespace was seen after some output; it is only written once the
    // next visible character arrives, which trims the end for free.
    let mut space_owed = false;
    let mut i = 0;
    while i < bytes.len() {
        let byte = bytes[i];
        if byte.is_ascii() {
            i += 1;
            let mapped = table[byte as usize];
            if mapped == WHITESPACE {
                space_owed = !out.is_empty();
                continue;
            }
            if space_owed {
                out.push(b' ');
                space_owed = false;
            }
            out.push(mapped);
            continue;
        }
        let c = text[i..]
            .chars()
            .next()
            .expect("i is on a character boundary");
        let len = c.len_utf8();
        if c.is_whitespace() {
            space_owed = !out.is_empty();
        } else {
            if space_owed {
                out.push(b' ');
                space_owed = false;
            }
            if fold {
                fold_into(c, out);
            } else {
                out.extend_from_slice(&bytes[i..i + len]);
            }
        }
        i += len;
    }
}

/// Marks whitespace in the ASCII tables; never a byte of ASCII output.
const WHITESPACE: u8 = 0xFF;

/// Each ASCII byte as it is written out, or `WHITESPACE` for the bytes `char::is_whitespace`
/// accepts (unlike `u8::is_ascii_whitespace`, that includes vertical tab).
const ASCII_KEPT: [u8; 128] = ascii_table(false);
const ASCII_FOLDED: [u8; 128] = ascii_table(true);

const fn ascii_table(fold: bool) -> [u8; 128] {
    let mut table = [0; 128];
    let mut byte = 0;
    while byte < 128 {
        table[byte] = match byte as u8 {
            b' ' | b'\t' | b'\n' | 0x0B | 0x0C | b'\r' => WHITESPACE,
            other if fold => other.to_ascii_lowercase(),
            other => other,
        };
        byte += 1;
    }
    table
}

fn fold_into(c: char, out: &mut Vec<u8>) {
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
            let mut buffer = [0; 4];
            for lower in c.to_lowercase() {
                out.extend_from_slice(lower.encode_utf8(&mut buffer).as_bytes());
            }
            return;
        }
    };
    out.extend_from_slice(special.as_bytes());
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
        let mut buffer = b"left over".to_vec();
        normalize_into(" A  B ", true, &mut buffer);
        assert_eq!(buffer, b"a b");
        normalize_into("\u{a0}Ação\tJÁ ", true, &mut buffer);
        assert_eq!(buffer, "ação já".as_bytes());
    }
}
