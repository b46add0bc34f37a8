//! Username patterns such as `bot%05d`: one printf-style integer
//! placeholder that a number fills, so that N accounts need no list. The
//! coordinator checks them in scenarios and the agents fill them
//! (`RunGroupRequest.account_pattern`), so both use this one parser.

/// Widest accepted field width; a `u32` has at most 10 digits, so more
/// than 20 is a typo.
const MAX_WIDTH: usize = 20;

/// A parsed username pattern.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccountPattern {
    /// Text before the placeholder, with `%%` already turned into `%`.
    prefix: String,
    /// Text after the placeholder, likewise.
    suffix: String,
    /// Minimum number of digits, 0 for none.
    width: usize,
    /// Pad to the width with zeros instead of spaces.
    zero_pad: bool,
}

/// Error of an invalid pattern; each message shows how to write one.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PatternError {
    #[error("pattern {pattern:?} has no integer placeholder; add one such as %d or %05d")]
    NoPlaceholder { pattern: String },

    #[error("pattern {pattern:?} has more than one placeholder; keep exactly one such as %d")]
    SeveralPlaceholders { pattern: String },

    #[error(
        "pattern {pattern:?} has an unsupported placeholder at byte {position}; use %d, %Nd or %0Nd (N at most {MAX_WIDTH}), and %% for a literal %"
    )]
    Unsupported { pattern: String, position: usize },

    #[error(
        "pattern {pattern:?} contains whitespace, '@' or '/', which a username cannot; give the local part only"
    )]
    InvalidCharacter { pattern: String },
}

impl AccountPattern {
    /// Parses a pattern with exactly one `%d`, `%Nd` or `%0Nd`.
    pub fn parse(pattern: &str) -> Result<AccountPattern, PatternError> {
        if pattern
            .chars()
            .any(|c| c.is_whitespace() || c == '@' || c == '/')
        {
            return Err(PatternError::InvalidCharacter {
                pattern: pattern.to_owned(),
            });
        }
        let unsupported = |position| PatternError::Unsupported {
            pattern: pattern.to_owned(),
            position,
        };

        let mut prefix = String::new();
        let mut suffix = String::new();
        let mut placeholder: Option<(usize, bool)> = None;
        let mut chars = pattern.char_indices().peekable();
        while let Some((position, c)) = chars.next() {
            if c != '%' {
                if placeholder.is_some() {
                    suffix.push(c);
                } else {
                    prefix.push(c);
                }
                continue;
            }
            if chars.next_if(|&(_, next)| next == '%').is_some() {
                if placeholder.is_some() {
                    suffix.push('%');
                } else {
                    prefix.push('%');
                }
                continue;
            }

            let zero_pad = chars.next_if(|&(_, next)| next == '0').is_some();
            let mut digits = String::new();
            while let Some((_, digit)) = chars.next_if(|(_, next)| next.is_ascii_digit()) {
                digits.push(digit);
            }
            if chars.next_if(|&(_, next)| next == 'd').is_none() {
                return Err(unsupported(position));
            }
            let width = if digits.is_empty() {
                0
            } else {
                digits
                    .parse::<usize>()
                    .ok()
                    .filter(|width| *width <= MAX_WIDTH)
                    .ok_or_else(|| unsupported(position))?
            };
            if zero_pad && width == 0 {
                return Err(unsupported(position));
            }
            if placeholder.is_some() {
                return Err(PatternError::SeveralPlaceholders {
                    pattern: pattern.to_owned(),
                });
            }
            placeholder = Some((width, zero_pad));
        }

        let Some((width, zero_pad)) = placeholder else {
            return Err(PatternError::NoPlaceholder {
                pattern: pattern.to_owned(),
            });
        };
        Ok(AccountPattern {
            prefix,
            suffix,
            width,
            zero_pad,
        })
    }

    /// Builds the username of account number `number`.
    pub fn username(&self, number: u64) -> String {
        let (prefix, suffix, width) = (&self.prefix, &self.suffix, self.width);
        if self.zero_pad {
            format!("{prefix}{number:0width$}{suffix}")
        } else {
            format!("{prefix}{number:width$}{suffix}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The three placeholder forms format like printf.
    #[test]
    fn pattern_formats_like_printf() {
        assert_eq!(AccountPattern::parse("bot%d").unwrap().username(7), "bot7");
        assert_eq!(
            AccountPattern::parse("bot%05d").unwrap().username(42),
            "bot00042"
        );
        assert_eq!(
            AccountPattern::parse("u%3d-x").unwrap().username(5),
            "u  5-x"
        );
        assert_eq!(
            AccountPattern::parse("100%%-%d").unwrap().username(1),
            "100%-1"
        );
        // Wider numbers than the width are not cut.
        assert_eq!(
            AccountPattern::parse("b%02d").unwrap().username(1234),
            "b1234"
        );
    }

    /// Patterns without exactly one valid placeholder are rejected.
    #[test]
    fn invalid_patterns_rejected() {
        assert!(matches!(
            AccountPattern::parse("bot"),
            Err(PatternError::NoPlaceholder { .. })
        ));
        assert!(matches!(
            AccountPattern::parse("bot%%"),
            Err(PatternError::NoPlaceholder { .. })
        ));
        assert!(matches!(
            AccountPattern::parse("bot%d-%d"),
            Err(PatternError::SeveralPlaceholders { .. })
        ));
        assert_eq!(
            AccountPattern::parse("bot%s"),
            Err(PatternError::Unsupported {
                pattern: "bot%s".to_owned(),
                position: 3
            })
        );
        assert!(matches!(
            AccountPattern::parse("bot%0d"),
            Err(PatternError::Unsupported { .. })
        ));
        assert!(matches!(
            AccountPattern::parse("bot%99d"),
            Err(PatternError::Unsupported { .. })
        ));
        assert!(matches!(
            AccountPattern::parse("bot%"),
            Err(PatternError::Unsupported { .. })
        ));
        assert!(matches!(
            AccountPattern::parse("bot%d@example.org"),
            Err(PatternError::InvalidCharacter { .. })
        ));
    }
}
