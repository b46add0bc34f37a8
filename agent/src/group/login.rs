//! Login settings of a slice: the SASL mechanism and, for every mechanism
//! but ANONYMOUS, the account of each bot.
//!
//! Accounts come either as a pattern (`bot%05d` with one shared password,
//! numbered from the bot's global index) or as an explicit list with one
//! entry per bot of the slice. Passwords never appear in errors or logs.

use std::sync::Arc;

use tonic::Status;
use xmppload_proto::v1::{RunGroupRequest, SaslMechanism};

use crate::sasl::{AccountPattern, Credentials, Mechanism, SaltedPasswordCache};

/// Source of the accounts of a slice.
#[derive(Clone)]
enum Accounts {
    /// ANONYMOUS: no account.
    None,
    /// Account `first + global index` of a pattern.
    Pattern {
        pattern: AccountPattern,
        password: String,
        first: u32,
    },
    /// One account per bot of the slice, in slice order.
    List(Vec<Credentials>),
}

/// The validated login settings of a slice.
#[derive(Clone)]
pub struct LoginPlan {
    pub mechanism: Mechanism,
    accounts: Accounts,
    /// Salted passwords of the slice's SCRAM logins.
    pub cache: Arc<SaltedPasswordCache>,
}

impl std::fmt::Debug for LoginPlan {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let accounts = match &self.accounts {
            Accounts::None => "none".to_owned(),
            Accounts::Pattern { pattern, first, .. } => format!("pattern {pattern:?} from {first}"),
            Accounts::List(list) => format!("{} listed accounts", list.len()),
        };
        f.debug_struct("LoginPlan")
            .field("mechanism", &self.mechanism)
            .field("accounts", &accounts)
            .finish()
    }
}

impl LoginPlan {
    /// SASL ANONYMOUS, as before registered accounts existed.
    pub fn anonymous() -> LoginPlan {
        LoginPlan {
            mechanism: Mechanism::Anonymous,
            accounts: Accounts::None,
            cache: Arc::new(SaltedPasswordCache::new()),
        }
    }

    /// Checks fields 60-62 of the request.
    pub fn from_request(request: &RunGroupRequest) -> Result<LoginPlan, Status> {
        let mechanism = match SaslMechanism::try_from(request.sasl_mechanism) {
            Ok(SaslMechanism::Unspecified | SaslMechanism::Anonymous) => Mechanism::Anonymous,
            Ok(SaslMechanism::Plain) => Mechanism::Plain,
            Ok(SaslMechanism::ScramSha1) => Mechanism::ScramSha1,
            Ok(SaslMechanism::ScramSha256) => Mechanism::ScramSha256,
            Err(_) => {
                return Err(Status::invalid_argument(format!(
                    "invalid `sasl_mechanism` {}: set ANONYMOUS, PLAIN, SCRAM_SHA_1 or SCRAM_SHA_256",
                    request.sasl_mechanism
                )));
            }
        };

        let has_accounts = !request.accounts.is_empty() || request.account_pattern.is_some();
        if mechanism == Mechanism::Anonymous {
            if has_accounts {
                return Err(Status::invalid_argument(
                    "invalid `sasl_mechanism` ANONYMOUS with accounts: anonymous bots use no account; remove the accounts or set PLAIN or SCRAM",
                ));
            }
            return Ok(LoginPlan::anonymous());
        }

        let accounts = if !request.accounts.is_empty() {
            list_accounts(request)?
        } else if let Some(pattern) = &request.account_pattern {
            let parsed = AccountPattern::parse(&pattern.pattern).map_err(|err| {
                Status::invalid_argument(format!("invalid `account_pattern.pattern`: {err}"))
            })?;
            if pattern.password.is_empty() {
                return Err(Status::invalid_argument(
                    "missing `account_pattern.password`: set the password the accounts share",
                ));
            }
            Accounts::Pattern {
                pattern: parsed,
                password: pattern.password.clone(),
                first: pattern.first,
            }
        } else {
            return Err(Status::invalid_argument(format!(
                "missing accounts for `sasl_mechanism` {mechanism}: set `account_pattern` or `accounts`"
            )));
        };

        Ok(LoginPlan {
            mechanism,
            accounts,
            cache: Arc::new(SaltedPasswordCache::new()),
        })
    }

    /// Account of the k-th bot of the slice, whose global index is
    /// `global_index`; `None` for ANONYMOUS.
    pub fn credentials(&self, k: u32, global_index: u32) -> Option<Credentials> {
        match &self.accounts {
            Accounts::None => None,
            Accounts::Pattern {
                pattern,
                password,
                first,
            } => Some(Credentials {
                username: pattern.username(u64::from(*first) + u64::from(global_index)),
                password: password.clone(),
            }),
            // from_request checked that the list has one entry per bot.
            Accounts::List(list) => list.get(k as usize).cloned(),
        }
    }
}

/// Checks the explicit account list: one per bot, each with a username
/// that can be a JID's local part and a password.
fn list_accounts(request: &RunGroupRequest) -> Result<Accounts, Status> {
    if request.accounts.len() != request.count as usize {
        return Err(Status::invalid_argument(format!(
            "invalid `accounts`: {} accounts for {} bots; send exactly one account per bot of the slice",
            request.accounts.len(),
            request.count
        )));
    }
    let mut list = Vec::with_capacity(request.accounts.len());
    for (k, account) in request.accounts.iter().enumerate() {
        let username = account.username.trim();
        if username.is_empty()
            || username.contains(|c: char| c.is_whitespace() || c == '@' || c == '/')
        {
            return Err(Status::invalid_argument(format!(
                "invalid `accounts[{k}].username` {:?}: set the local part of the account's JID, without whitespace, '@' or '/'",
                account.username
            )));
        }
        if account.password.is_empty() {
            return Err(Status::invalid_argument(format!(
                "missing `accounts[{k}].password` for {username:?}: set the account's password"
            )));
        }
        list.push(Credentials {
            username: username.to_owned(),
            password: account.password.clone(),
        });
    }
    Ok(Accounts::List(list))
}

#[cfg(test)]
mod tests {
    use super::*;
    use xmppload_proto::v1::{Account, AccountPattern as ProtoPattern};

    fn request(mechanism: SaslMechanism) -> RunGroupRequest {
        RunGroupRequest {
            count: 2,
            sasl_mechanism: mechanism as i32,
            ..Default::default()
        }
    }

    /// A pattern numbers accounts from `first` plus the global index.
    #[test]
    fn pattern_accounts_follow_global_index() {
        let mut req = request(SaslMechanism::ScramSha1);
        req.account_pattern = Some(ProtoPattern {
            pattern: "bot%03d".to_owned(),
            password: "pw".to_owned(),
            first: 1,
        });
        let plan = LoginPlan::from_request(&req).unwrap();
        assert_eq!(plan.mechanism, Mechanism::ScramSha1);
        let credentials = plan.credentials(0, 41).unwrap();
        assert_eq!(credentials.username, "bot042");
        assert_eq!(credentials.password, "pw");
    }

    /// A list gives the k-th bot the k-th account.
    #[test]
    fn listed_accounts_follow_slice_order() {
        let mut req = request(SaslMechanism::Plain);
        req.accounts = vec![
            Account {
                username: "alice".to_owned(),
                password: "a".to_owned(),
            },
            Account {
                username: "bob".to_owned(),
                password: "b".to_owned(),
            },
        ];
        let plan = LoginPlan::from_request(&req).unwrap();
        assert_eq!(plan.credentials(1, 99).unwrap().username, "bob");
        assert!(!format!("{plan:?}").contains("\"a\""));
    }

    /// Missing, mismatched or invalid accounts are rejected with the field.
    #[test]
    fn invalid_accounts_rejected() {
        let message = |req: &RunGroupRequest| {
            LoginPlan::from_request(req)
                .unwrap_err()
                .message()
                .to_owned()
        };

        let none = request(SaslMechanism::Plain);
        assert!(message(&none).contains("missing accounts"));

        let mut short = request(SaslMechanism::Plain);
        short.accounts = vec![Account {
            username: "alice".to_owned(),
            password: "a".to_owned(),
        }];
        assert!(message(&short).contains("1 accounts for 2 bots"));

        let mut bad_pattern = request(SaslMechanism::Plain);
        bad_pattern.account_pattern = Some(ProtoPattern {
            pattern: "bot".to_owned(),
            password: "pw".to_owned(),
            first: 0,
        });
        assert!(message(&bad_pattern).contains("no integer placeholder"));

        let mut no_password = request(SaslMechanism::Plain);
        no_password.account_pattern = Some(ProtoPattern {
            pattern: "bot%d".to_owned(),
            password: String::new(),
            first: 0,
        });
        assert!(message(&no_password).contains("account_pattern.password"));

        let mut anonymous = request(SaslMechanism::Anonymous);
        anonymous.account_pattern = Some(ProtoPattern {
            pattern: "bot%d".to_owned(),
            password: "secret-value".to_owned(),
            first: 0,
        });
        let text = message(&anonymous);
        assert!(text.contains("ANONYMOUS with accounts"));
        assert!(!text.contains("secret-value"));

        let mut unknown = request(SaslMechanism::Plain);
        unknown.sasl_mechanism = 77;
        assert!(message(&unknown).contains("sasl_mechanism"));
    }
}
