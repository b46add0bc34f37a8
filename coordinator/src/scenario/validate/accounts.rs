//! Checks the login keys of a group: `auth`, `accounts` with `password`
//! and `accounts_first`, `accounts_file`, and `accounts_domain`.
//!
//! An accounts file has one account per line, `USERNAME PASSWORD`, split
//! at the first space or tab, so the password may contain spaces. Blank
//! lines and lines starting with `#` are skipped. Errors in the file name
//! the file and its line; passwords never appear in an error.

use std::ops::Range;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use toml::Spanned;
use xmppload_proto::account_pattern::AccountPattern;

use super::{Context, ScenarioError};
use crate::scenario::login::{Account, Accounts, AuthMechanism, GroupLogin};

/// A value picked from the group or `[defaults]`, with its field name.
pub(super) type Picked<T> = (Option<Spanned<T>>, String);

/// The login keys of one group, each from the group or `[defaults]`.
pub(super) struct LoginKeys {
    pub auth: Picked<String>,
    pub accounts: Picked<String>,
    pub password: Picked<String>,
    pub accounts_first: Picked<u32>,
    pub accounts_file: Picked<String>,
    pub accounts_domain: Picked<String>,
}

/// Resolves the login of a group of `bots` bots. `fallback_domain` is
/// `[server] accounts_domain`, else `[server] domain`.
pub(super) fn login(
    cx: &Context,
    keys: LoginKeys,
    bots: u32,
    fallback_domain: &str,
) -> Result<GroupLogin, ScenarioError> {
    let (auth, auth_field) = keys.auth;
    let mechanism = match &auth {
        None => AuthMechanism::Anonymous,
        Some(value) => AuthMechanism::parse(value.get_ref()).ok_or_else(|| {
            cx.invalid(
                value.span(),
                &auth_field,
                format!(
                    "`{}` is not a SASL mechanism; use {}",
                    value.get_ref(),
                    AuthMechanism::NAMES
                ),
            )
        })?,
    };

    if mechanism == AuthMechanism::Anonymous {
        for (value, field) in [&keys.accounts, &keys.password, &keys.accounts_file] {
            if let Some(value) = value {
                return Err(cx.invalid(
                    value.span(),
                    field,
                    "is set, but the group logs in anonymously; set `auth` to plain, scram-sha-1 or scram-sha-256, or remove it",
                ));
            }
        }
        return Ok(GroupLogin::Anonymous);
    }
    let auth_span = auth.as_ref().map_or(0..0, Spanned::span);

    let accounts = match (keys.accounts, keys.accounts_file) {
        ((Some(_), _), (Some(file), file_field)) => {
            return Err(cx.invalid(
                file.span(),
                &file_field,
                "is set together with `accounts`; give either a pattern or a file",
            ));
        }
        ((None, _), (None, _)) => {
            return Err(cx.invalid(
                auth_span,
                &auth_field,
                format!(
                    "`{}` needs accounts; set `accounts = \"bot%05d\"` with `password`, or `accounts_file`",
                    mechanism.as_str()
                ),
            ));
        }
        ((Some(pattern), pattern_field), (None, _)) => pattern_accounts(
            cx,
            pattern,
            &pattern_field,
            keys.password,
            keys.accounts_first,
            bots,
        )?,
        ((None, _), (Some(file), file_field)) => {
            if let (Some(password), field) = &keys.password {
                return Err(cx.invalid(
                    password.span(),
                    field,
                    "is for an `accounts` pattern; an accounts file gives each account's password",
                ));
            }
            file_accounts(cx, file, &file_field, bots)?
        }
    };

    let domain = match keys.accounts_domain {
        (Some(value), field) => {
            let span = value.span();
            let domain = value.into_inner();
            if domain.trim().is_empty()
                || domain.contains(['@', '/'])
                || domain.contains(char::is_whitespace)
            {
                return Err(cx.invalid(
                    span,
                    &field,
                    format!("`{domain}` is not an XMPP domain; give the VirtualHost of the accounts, like localhost"),
                ));
            }
            domain
        }
        (None, _) => fallback_domain.to_owned(),
    };

    Ok(GroupLogin::Accounts {
        mechanism,
        domain,
        accounts,
    })
}

fn pattern_accounts(
    cx: &Context,
    pattern: Spanned<String>,
    pattern_field: &str,
    (password, password_field): Picked<String>,
    (first, first_field): Picked<u32>,
    bots: u32,
) -> Result<Accounts, ScenarioError> {
    let span = pattern.span();
    let pattern = pattern.into_inner();
    AccountPattern::parse(&pattern)
        .map_err(|err| cx.invalid(span.clone(), pattern_field, err.to_string()))?;

    let password = match password {
        Some(value) if !value.get_ref().is_empty() => value.into_inner(),
        Some(value) => {
            return Err(cx.invalid(value.span(), &password_field, "must not be empty"));
        }
        None => {
            return Err(cx.invalid(
                span,
                pattern_field,
                "needs `password`, the password every account of the pattern shares",
            ));
        }
    };

    let (first, first_span) = match first {
        Some(value) => (*value.get_ref(), value.span()),
        None => (1, span),
    };
    if u64::from(first) + u64::from(bots) > u64::from(u32::MAX) + 1 {
        return Err(cx.invalid(
            first_span,
            &first_field,
            format!("{first} plus {bots} bots passes 2^32; use a smaller first number"),
        ));
    }
    Ok(Accounts::Pattern {
        pattern,
        password,
        first,
    })
}

fn file_accounts(
    cx: &Context,
    file: Spanned<String>,
    field: &str,
    bots: u32,
) -> Result<Accounts, ScenarioError> {
    let span = file.span();
    let path = resolve(&cx.file, file.get_ref());
    let text = std::fs::read_to_string(&path).map_err(|err| {
        cx.invalid(
            span.clone(),
            field,
            format!(
                "cannot read {}: {err}; give a path relative to the scenario file",
                path.display()
            ),
        )
    })?;
    let accounts = parse_accounts(&path, &text, field)?;
    if accounts.len() < bots as usize {
        return Err(too_few(cx, span, field, &path, accounts.len(), bots));
    }
    Ok(Accounts::List(Arc::new(accounts)))
}

fn too_few(
    cx: &Context,
    span: Range<usize>,
    field: &str,
    path: &Path,
    found: usize,
    bots: u32,
) -> ScenarioError {
    cx.invalid(
        span,
        field,
        format!(
            "{} has {found} accounts, fewer than the group's {bots} bots; add accounts or lower `bots`",
            path.display()
        ),
    )
}

/// Reads `USERNAME PASSWORD` lines; an error names the file and line.
fn parse_accounts(path: &Path, text: &str, field: &str) -> Result<Vec<Account>, ScenarioError> {
    let mut accounts = Vec::new();
    for (number, line) in text.lines().enumerate() {
        let line_number = number + 1;
        let invalid = |message: &str| ScenarioError::Invalid {
            file: path.display().to_string(),
            line: line_number,
            field: field.to_owned(),
            message: message.to_owned(),
        };
        let line = line.trim_end_matches('\r');
        if line.trim().is_empty() || line.trim_start().starts_with('#') {
            continue;
        }
        let Some((username, password)) = line.trim_start().split_once([' ', '\t']) else {
            return Err(invalid(
                "has no password; write `USERNAME PASSWORD` separated by a space",
            ));
        };
        if username.contains(['@', '/']) {
            return Err(invalid(&format!(
                "username `{username}` must be the local part only, without '@' or '/'; the domain comes from accounts_domain"
            )));
        }
        if let Some(first) = accounts
            .iter()
            .position(|account: &Account| account.username == username)
        {
            return Err(invalid(&format!(
                "username `{username}` is listed twice (also account {} of the file); list each account once",
                first + 1
            )));
        }
        let password = password.trim_start_matches([' ', '\t']);
        if password.is_empty() {
            return Err(invalid(
                "has no password; write `USERNAME PASSWORD` separated by a space",
            ));
        }
        // The password is the rest of the line, spaces included, so a
        // trailing blank would become part of it and fail only at login.
        if password.ends_with([' ', '\t']) {
            return Err(invalid(
                "ends in a space or tab, which would be part of the password; remove it",
            ));
        }
        accounts.push(Account {
            username: username.to_owned(),
            password: password.to_owned(),
        });
    }
    Ok(accounts)
}

/// Resolves a path from the scenario against the scenario file's folder.
fn resolve(scenario_file: &str, path: &str) -> PathBuf {
    let path = Path::new(path);
    if path.is_absolute() {
        return path.to_path_buf();
    }
    Path::new(scenario_file)
        .parent()
        .unwrap_or(Path::new(""))
        .join(path)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::{Overrides, Scenario};

    /// Builds a scenario with one c2s group that has the extra `group_keys`.
    fn scenario(server_keys: &str, group_keys: &str) -> String {
        format!(
            r#"
name = "accounts"

[server]
domain = "anon.localhost"
muc_domain = "conference.anon.localhost"
c2s = "127.0.0.1:5222"
{server_keys}

[agents]
addresses = ["http://127.0.0.1:15051"]

[[timeline]]
group = "reg"
transport = "c2s"
bots = 3
{group_keys}
"#
        )
    }

    fn parse_in(dir: &Path, text: &str) -> Result<Scenario, ScenarioError> {
        Scenario::parse(&dir.join("s.toml"), text, &Overrides::default())
    }

    fn login_of(text: &str) -> GroupLogin {
        let scenario = parse_in(Path::new("."), text).unwrap();
        scenario.groups().next().unwrap().login.clone()
    }

    fn error_of(dir: &Path, text: &str) -> String {
        match parse_in(dir, text) {
            Ok(_) => panic!("scenario was accepted"),
            Err(err) => err.to_string(),
        }
    }

    /// The committed accounts scenario is valid and uses each mechanism on
    /// the host that offers it.
    #[test]
    fn registered_accounts_scenario_valid() {
        let path =
            Path::new(env!("CARGO_MANIFEST_DIR")).join("../scenarios/50-registered-accounts.toml");
        let scenario = Scenario::load(&path, &Overrides::default()).unwrap();
        let logins: Vec<(AuthMechanism, String)> = scenario
            .groups()
            .map(|group| match &group.login {
                GroupLogin::Accounts {
                    mechanism, domain, ..
                } => (*mechanism, domain.clone()),
                GroupLogin::Anonymous => panic!("group {} is anonymous", group.name),
            })
            .collect();
        assert_eq!(
            logins,
            [
                (AuthMechanism::Plain, "localhost".to_owned()),
                (AuthMechanism::ScramSha1, "localhost".to_owned()),
                (AuthMechanism::ScramSha256, "sha256.localhost".to_owned()),
            ]
        );
    }

    /// Without `auth` a group is anonymous, as before accounts existed.
    #[test]
    fn default_login_is_anonymous() {
        assert_eq!(login_of(&scenario("", "")), GroupLogin::Anonymous);
    }

    /// A pattern with a password resolves, with the server's accounts domain.
    #[test]
    fn pattern_login_resolves() {
        let text = scenario(
            "accounts_domain = \"localhost\"",
            "auth = \"SCRAM-SHA-256\"\naccounts = \"bot%05d\"\npassword = \"pw\"\naccounts_first = 10",
        );
        let GroupLogin::Accounts {
            mechanism,
            domain,
            accounts,
        } = login_of(&text)
        else {
            panic!("expected accounts");
        };
        assert_eq!(mechanism, AuthMechanism::ScramSha256);
        assert_eq!(domain, "localhost");
        assert_eq!(
            accounts,
            Accounts::Pattern {
                pattern: "bot%05d".to_owned(),
                password: "pw".to_owned(),
                first: 10
            }
        );
        assert!(!format!("{accounts:?}").contains("\"pw\""));
    }

    /// Bad login keys are rejected with the file, the line and the field.
    #[test]
    fn invalid_login_keys_rejected() {
        let dir = Path::new(".");
        let bad_pattern = scenario(
            "",
            "auth = \"plain\"\naccounts = \"bot\"\npassword = \"pw\"",
        );
        assert_eq!(
            error_of(dir, &bad_pattern),
            "./s.toml:18: field `timeline[0].accounts`: pattern \"bot\" has no integer placeholder; add one such as %d or %05d"
        );

        let two = scenario(
            "",
            "auth = \"plain\"\naccounts = \"bot%d%d\"\npassword = \"pw\"",
        );
        assert!(error_of(dir, &two).contains("more than one placeholder"));

        let no_password = scenario("", "auth = \"plain\"\naccounts = \"bot%d\"");
        assert!(
            error_of(dir, &no_password).contains("field `timeline[0].accounts`: needs `password`")
        );

        let no_accounts = scenario("", "auth = \"scram-sha-1\"");
        assert!(
            error_of(dir, &no_accounts)
                .contains("field `timeline[0].auth`: `scram-sha-1` needs accounts")
        );

        let unknown = scenario("", "auth = \"digest-md5\"");
        assert!(error_of(dir, &unknown).contains("`digest-md5` is not a SASL mechanism"));

        let anonymous = scenario("", "accounts = \"bot%d\"\npassword = \"secret-value\"");
        let text = error_of(dir, &anonymous);
        assert!(text.contains("logs in anonymously"), "{text}");
        assert!(!text.contains("secret-value"));
    }

    /// An accounts file is read relative to the scenario; a missing file,
    /// a bad line and too few accounts are each named.
    #[test]
    fn accounts_file_checked() {
        let dir = tempfile::tempdir().unwrap();
        let keys = "auth = \"plain\"\naccounts_file = \"accounts.txt\"";

        let missing = error_of(dir.path(), &scenario("", keys));
        assert!(
            missing.contains("field `timeline[0].accounts_file`: cannot read"),
            "{missing}"
        );
        assert!(missing.contains("accounts.txt"), "{missing}");

        std::fs::write(dir.path().join("accounts.txt"), "a pw1\nb\n").unwrap();
        let bad_line = error_of(dir.path(), &scenario("", keys));
        assert!(bad_line.ends_with(
            "accounts.txt:2: field `timeline[0].accounts_file`: has no password; write `USERNAME PASSWORD` separated by a space"
        ), "{bad_line}");

        std::fs::write(dir.path().join("accounts.txt"), "a pw1\nb pw2\n").unwrap();
        let too_few = error_of(dir.path(), &scenario("", keys));
        assert!(
            too_few.contains("has 2 accounts, fewer than the group's 3 bots"),
            "{too_few}"
        );

        std::fs::write(dir.path().join("accounts.txt"), "a pw1\nb pw2\nc pw3\n").unwrap();
        let scenario = parse_in(dir.path(), &scenario("", keys)).unwrap();
        let GroupLogin::Accounts {
            accounts: Accounts::List(list),
            domain,
            ..
        } = &scenario.groups().next().unwrap().login
        else {
            panic!("expected listed accounts");
        };
        assert_eq!(list.len(), 3);
        assert_eq!(list[2].username, "c");
        // Without accounts_domain anywhere, the server's domain is used.
        assert_eq!(domain, "anon.localhost");
    }

    /// Lines split at the first blank; comments and blank lines are skipped.
    #[test]
    fn accounts_file_lines_parse() {
        let text = "# test accounts\nalice secret one\n\nbob\tpw2\r\n";
        let accounts =
            parse_accounts(Path::new("a.txt"), text, "timeline[0].accounts_file").unwrap();
        assert_eq!(accounts.len(), 2);
        assert_eq!(accounts[0].username, "alice");
        assert_eq!(accounts[0].password, "secret one");
        assert_eq!(accounts[1].username, "bob");
        assert_eq!(accounts[1].password, "pw2");
    }

    /// A malformed line is reported with the file, its number and the field.
    #[test]
    fn accounts_file_bad_line_named() {
        let text = "alice pw\nbob\n";
        let err =
            parse_accounts(Path::new("accts.txt"), text, "timeline[1].accounts_file").unwrap_err();
        assert_eq!(
            err.to_string(),
            "accts.txt:2: field `timeline[1].accounts_file`: has no password; write `USERNAME PASSWORD` separated by a space"
        );

        let err =
            parse_accounts(Path::new("accts.txt"), "carol@example.org pw\n", "f").unwrap_err();
        assert!(
            err.to_string()
                .starts_with("accts.txt:1: field `f`: username `carol@example.org`")
        );
        assert!(!err.to_string().contains(" pw"));
    }

    /// A trailing blank and a repeated username are rejected with the line.
    #[test]
    fn accounts_file_trailing_blank_and_duplicate() {
        let err = parse_accounts(Path::new("a.txt"), "alice pw \n", "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.txt:1: field `f`: ends in a space or tab, which would be part of the password; remove it"
        );

        let err =
            parse_accounts(Path::new("a.txt"), "alice pw\nbob pw\nalice pw2\n", "f").unwrap_err();
        assert_eq!(
            err.to_string(),
            "a.txt:3: field `f`: username `alice` is listed twice (also account 1 of the file); list each account once"
        );
    }
}
