//! Certificate requests against roles: every grant and every refusal.

#![allow(clippy::unwrap_used, clippy::expect_used)] // a failing test may panic

use std::time::Duration;

use signet_log::entry::{PinPolicy, TouchPolicy};
use signet_policy::{AccessRequest, Change, Grant, HardwareKey, Policy, Refusal, User};

const POLICY: &str = "\
kind: role
name: ssh-dev
allow: { logins: [ubuntu, deploy] }
options: { max_session_ttl: 12h, hardware_key: attested, session_mfa: false }
---
kind: role
name: ssh-prod
allow: { logins: [root, ubuntu], node_labels: { env: [prod] } }
options: { max_session_ttl: 8h, hardware_key: touch_and_pin, session_mfa: true }
---
kind: role
name: audit
allow: { logins: [audit] }
options: { max_session_ttl: 1h, hardware_key: none, session_mfa: false }
---
kind: role
name: touchy
allow: { logins: [ops] }
options: { max_session_ttl: 2h, hardware_key: touch, session_mfa: false }
---
kind: user
name: alice
roles: [ssh-dev, ssh-prod, touchy]
---
kind: user
name: bob
roles: [audit]
---
kind: user
name: carol
roles: []
";

const HOUR: Duration = Duration::from_secs(3600);
const PLAIN: Option<(PinPolicy, TouchPolicy)> = Some((PinPolicy::Never, TouchPolicy::Never));
const TOUCH: Option<(PinPolicy, TouchPolicy)> = Some((PinPolicy::Never, TouchPolicy::Cached));
const STRONG: Option<(PinPolicy, TouchPolicy)> = Some((PinPolicy::Once, TouchPolicy::Always));

fn policy() -> Policy {
    Policy::parse("roles.yaml", POLICY).unwrap()
}

fn ask(
    user: &str,
    principals: &[&str],
    ttl: Duration,
    key: Option<(PinPolicy, TouchPolicy)>,
) -> Result<Grant, Refusal> {
    policy().authorize(
        user,
        &AccessRequest {
            principals: principals.iter().map(|p| p.to_string()).collect(),
            ttl,
            key,
        },
    )
}

#[test]
fn grants_name_the_contributing_roles_and_their_joint_limits() {
    // deploy: only ssh-dev allows it.
    assert_eq!(
        ask("alice", &["deploy"], 12 * HOUR, PLAIN),
        Ok(Grant {
            roles: vec!["ssh-dev".into()],
            max_ttl: 12 * HOUR,
            required: HardwareKey::Attested,
            session_mfa: false,
        })
    );
    // ubuntu: both ssh-dev and ssh-prod allow it, so both set the limits:
    // the shorter TTL, the stronger key, and ssh-prod's session MFA.
    assert_eq!(
        ask("alice", &["ubuntu"], 8 * HOUR, STRONG),
        Ok(Grant {
            roles: vec!["ssh-dev".into(), "ssh-prod".into()],
            max_ttl: 8 * HOUR,
            required: HardwareKey::TouchAndPin,
            session_mfa: true,
        })
    );
    // deploy and ops: ssh-dev and touchy; ssh-prod does not contribute.
    assert_eq!(
        ask("alice", &["ops", "deploy"], 2 * HOUR, TOUCH),
        Ok(Grant {
            roles: vec!["ssh-dev".into(), "touchy".into()],
            max_ttl: 2 * HOUR,
            required: HardwareKey::Touch,
            session_mfa: false,
        })
    );
    // A role asking for no attestation takes any key, or none.
    let g = ask("bob", &["audit"], HOUR, None).unwrap();
    assert_eq!(
        (g.roles, g.required),
        (vec!["audit".to_string()], HardwareKey::None)
    );
    // The TTL limit is inclusive.
    assert!(ask("bob", &["audit"], HOUR, None).is_ok());
    assert_eq!(
        ask("bob", &["audit"], HOUR + Duration::from_secs(1), None),
        Err(Refusal::TtlTooLong { max: HOUR })
    );
}

#[test]
fn every_refusal() {
    assert_eq!(
        ask("mallory", &["root"], HOUR, STRONG),
        Err(Refusal::NoSuchUser)
    );
    assert_eq!(ask("carol", &["root"], HOUR, STRONG), Err(Refusal::NoRoles));
    assert_eq!(ask("alice", &[], HOUR, STRONG), Err(Refusal::NoPrincipals));
    assert_eq!(
        ask("alice", &["deploy", "admin"], HOUR, STRONG),
        Err(Refusal::PrincipalNotAllowed("admin".into()))
    );
    assert_eq!(
        ask("bob", &["root"], HOUR, STRONG),
        Err(Refusal::PrincipalNotAllowed("root".into()))
    );
    // ubuntu brings ssh-prod's 8h in, though ssh-dev alone would allow 12h.
    assert_eq!(
        ask("alice", &["ubuntu"], 12 * HOUR, STRONG),
        Err(Refusal::TtlTooLong { max: 8 * HOUR })
    );
    assert_eq!(
        ask("alice", &["ubuntu"], HOUR, TOUCH),
        Err(Refusal::HardwareKeyTooWeak {
            required: HardwareKey::TouchAndPin
        })
    );
    assert_eq!(
        ask(
            "alice",
            &["root"],
            HOUR,
            Some((PinPolicy::Always, TouchPolicy::Never))
        ),
        Err(Refusal::HardwareKeyTooWeak {
            required: HardwareKey::TouchAndPin
        })
    );
    assert_eq!(
        ask("alice", &["ops"], HOUR, PLAIN),
        Err(Refusal::HardwareKeyTooWeak {
            required: HardwareKey::Touch
        })
    );
    assert_eq!(
        ask("alice", &["deploy"], HOUR, None),
        Err(Refusal::HardwareKeyTooWeak {
            required: HardwareKey::Attested
        })
    );
}

#[test]
fn a_role_the_log_no_longer_holds_grants_nothing() {
    let mut p = policy();
    p.apply(&Change::PutUser(User {
        name: "dan".into(),
        roles: vec!["gone".into()],
    }));
    let req = AccessRequest {
        principals: vec!["root".into()],
        ttl: HOUR,
        key: STRONG,
    };
    assert_eq!(p.authorize("dan", &req), Err(Refusal::NoRoles));
    p.apply(&Change::RemoveRole("ssh-prod".into()));
    assert_eq!(
        p.authorize("alice", &req),
        Err(Refusal::PrincipalNotAllowed("root".into()))
    );
    p.apply(&Change::RemoveUser("alice".into()));
    assert_eq!(p.authorize("alice", &req), Err(Refusal::NoSuchUser));
}

#[test]
fn refusals_say_what_to_do() {
    let shown = |r: Refusal| r.to_string();
    assert!(shown(Refusal::NoSuchUser).contains("ask an administrator"));
    assert!(shown(Refusal::NoRoles).contains("no roles"));
    assert!(shown(Refusal::NoPrincipals).contains("name at least one"));
    assert_eq!(
        shown(Refusal::PrincipalNotAllowed("admin".into())),
        "none of your roles allows the login \"admin\"; ask for one your roles allow"
    );
    assert_eq!(
        shown(Refusal::TtlTooLong { max: 8 * HOUR }),
        "the certificate lifetime asked for is too long: your roles allow at most 8h"
    );
    assert!(shown(Refusal::HardwareKeyTooWeak {
        required: HardwareKey::Touch
    })
    .contains("touch policy always or cached (hardware_key: touch)"));
    assert!(shown(Refusal::HardwareKeyTooWeak {
        required: HardwareKey::TouchAndPin
    })
    .contains("PIN policy once or always"));
}

#[test]
fn the_example_directory_authorizes_as_documented() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../deploy/roles");
    let p = Policy::load(&[dir]).unwrap();
    let req = |principals: &[&str], key| AccessRequest {
        principals: principals.iter().map(|s| s.to_string()).collect(),
        ttl: HOUR,
        key,
    };
    let g = p.authorize("alice", &req(&["root"], STRONG)).unwrap();
    assert_eq!(g.roles, ["prod-sre"]);
    assert_eq!(
        p.authorize("alice", &req(&["root"], TOUCH)),
        Err(Refusal::HardwareKeyTooWeak {
            required: HardwareKey::TouchAndPin
        })
    );
    assert_eq!(
        p.authorize("bob", &req(&["deploy"], TOUCH)).unwrap().roles,
        ["developer"]
    );
    assert_eq!(
        p.authorize("bob", &req(&["root"], STRONG)),
        Err(Refusal::PrincipalNotAllowed("root".into()))
    );
    let audit = p.role("auditor").unwrap();
    assert!(audit.allows_node(&[("env".to_string(), "prod".to_string())].into()));
    let sre = p.role("prod-sre").unwrap();
    assert!(!sre.allows_node(&[("env".to_string(), "prod".to_string())].into()));
    assert!(sre.allows_node(
        &[
            ("env".to_string(), "prod".to_string()),
            ("team".to_string(), "sre".to_string())
        ]
        .into()
    ));
    assert!(sre.allows_login("root") && !sre.allows_login("deploy"));
}

#[test]
fn refusal_codes_are_stable() {
    let codes: Vec<&str> = [
        Refusal::NoSuchUser,
        Refusal::NoRoles,
        Refusal::PrincipalNotAllowed("x".into()),
        Refusal::TtlTooLong { max: HOUR },
        Refusal::HardwareKeyTooWeak {
            required: HardwareKey::Touch,
        },
        Refusal::NoPrincipals,
    ]
    .iter()
    .map(Refusal::code)
    .collect();
    assert_eq!(
        codes,
        [
            "no_such_user",
            "no_roles",
            "principal_not_allowed",
            "ttl_too_long",
            "hardware_key_too_weak",
            "no_principals"
        ]
    );
}
