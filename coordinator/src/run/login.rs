//! The login fields (60-62) of a `RunGroupRequest`.

use xmppload_proto::v1::{AccountPattern, RunGroupRequest, SaslMechanism};

use super::placement::Indices;
use crate::scenario::login::{Accounts, AuthMechanism, GroupLogin};

/// Fills the mechanism and the accounts of one agent's slice. A pattern
/// goes as it is, because the agent numbers the accounts from the global
/// indices. A file's accounts go one per bot of the slice, in slice order.
pub fn login_fields(login: &GroupLogin, slice: &Indices) -> RunGroupRequest {
    let GroupLogin::Accounts {
        mechanism,
        accounts,
        ..
    } = login
    else {
        return RunGroupRequest {
            sasl_mechanism: SaslMechanism::Anonymous as i32,
            ..RunGroupRequest::default()
        };
    };
    let sasl_mechanism = match mechanism {
        AuthMechanism::Anonymous => SaslMechanism::Anonymous,
        AuthMechanism::Plain => SaslMechanism::Plain,
        AuthMechanism::ScramSha1 => SaslMechanism::ScramSha1,
        AuthMechanism::ScramSha256 => SaslMechanism::ScramSha256,
    } as i32;
    match accounts {
        Accounts::Pattern {
            pattern,
            password,
            first,
        } => RunGroupRequest {
            sasl_mechanism,
            account_pattern: Some(AccountPattern {
                pattern: pattern.clone(),
                password: password.clone(),
                first: *first,
            }),
            ..RunGroupRequest::default()
        },
        Accounts::List(list) => {
            // Validation checked that the file has an account per bot, so
            // every global index has one.
            let account = |index: u32| list.get(index as usize).cloned();
            let accounts = match slice {
                Indices::Progression {
                    offset,
                    stride,
                    count,
                } => (0..*count)
                    .filter_map(|k| account(offset + k * stride))
                    .collect(),
                Indices::List(indices) => indices.iter().filter_map(|&i| account(i)).collect(),
            };
            RunGroupRequest {
                sasl_mechanism,
                accounts,
                ..RunGroupRequest::default()
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use crate::scenario::login::Account;

    /// A slice of a file's accounts follows the slice's global indices.
    #[test]
    fn listed_accounts_follow_slice() {
        let list = (0..6)
            .map(|i| Account {
                username: format!("user{i}"),
                password: format!("pw{i}"),
            })
            .collect();
        let login = GroupLogin::Accounts {
            mechanism: AuthMechanism::ScramSha256,
            domain: "localhost".to_owned(),
            accounts: Accounts::List(Arc::new(list)),
        };
        let slice = Indices::Progression {
            offset: 1,
            stride: 2,
            count: 3,
        };
        let fields = login_fields(&login, &slice);
        assert_eq!(fields.sasl_mechanism, SaslMechanism::ScramSha256 as i32);
        let names: Vec<&str> = fields
            .accounts
            .iter()
            .map(|a| a.username.as_str())
            .collect();
        assert_eq!(names, ["user1", "user3", "user5"]);
        assert_eq!(fields.accounts[2].password, "pw5");

        let listed = login_fields(&login, &Indices::List(vec![0, 4]));
        let names: Vec<&str> = listed
            .accounts
            .iter()
            .map(|a| a.username.as_str())
            .collect();
        assert_eq!(names, ["user0", "user4"]);
    }
}
