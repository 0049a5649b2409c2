//! What `signet proxy ssh` is asked to reach: `USER@NODE[:PORT]`, as
//! OpenSSH's `%r@%h:%p` spells it, and the proxy's `HOST[:PORT]`.
//!
//! Both come from outside (a command line, an ssh_config `Host` line that
//! expanded a name typed by anyone): the node and the login go into the
//! preamble line, so they are held to the roles' own rules (the proxy
//! checks the same) and nothing that could end the line or add a field
//! gets through.

use signet_policy::rules;

/// `USER@NODE[:PORT]`: the unix login, the node's inventory name, and the
/// port ssh was told (the proxy dials the address the inventory names;
/// see [`Target::port`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Target {
    /// The unix login on the node.
    pub login: String,
    /// The node, by its inventory name.
    pub node: String,
    /// The port in the target, if any. `signet-ssh/1` names no port: the
    /// inventory holds each node's address, so the proxy never dials a
    /// port the client chose.
    pub port: Option<u16>,
}

impl Target {
    /// Parses `USER@NODE[:PORT]`. The login is everything before the first
    /// `@` (a unix login has none), the port the digits after the last `:`
    /// (a node name has none).
    pub fn parse(text: &str) -> Result<Self, String> {
        let expected = "expected USER@NODE:PORT (as in ProxyCommand signet proxy ssh %r@%h:%p)";
        let (login, rest) = text
            .split_once('@')
            .ok_or_else(|| format!("{}: {expected}", shown(text)))?;
        let (node, port) = match rest.rsplit_once(':') {
            Some((node, port)) => (node, Some(parse_port(port)?)),
            None => (rest, None),
        };
        rules::check_login(login).map_err(|m| format!("the login {m}"))?;
        rules::check_name(node).map_err(|m| format!("the node name {m}"))?;
        Ok(Self {
            login: login.to_owned(),
            node: node.to_owned(),
            port,
        })
    }
}

fn parse_port(text: &str) -> Result<u16, String> {
    if text.is_empty() || text.len() > 5 || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(format!("the port {} is not a number", shown(text)));
    }
    match text.parse::<u16>() {
        Ok(port) if port > 0 => Ok(port),
        _ => Err(format!("the port {} is not in 1-65535", shown(text))),
    }
}

/// A value in an error message: quoted, control characters escaped, cut
/// to a readable length (it may be anything a hostile name holds).
fn shown(text: &str) -> String {
    let cut: String = text.chars().take(80).collect();
    let mut out = format!("{cut:?}");
    if text.chars().count() > 80 {
        out.push('…');
    }
    out
}

/// The proxy's address: `HOST[:PORT]` (443 when no port is given), also
/// accepted as `https://HOST[:PORT]` (the form `signet login --proxy`
/// takes). `HOST` is a DNS name, an IPv4 address, or `[IPv6]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProxyAddress {
    /// The name the proxy's certificate must carry (DNS name or IP).
    pub host: String,
    /// The TCP port.
    pub port: u16,
}

impl ProxyAddress {
    /// Parses `HOST[:PORT]` or `https://HOST[:PORT]`.
    pub fn parse(text: &str) -> Result<Self, String> {
        let bad = |why: &str| format!("the proxy address {}: {why}", shown(text));
        let rest = text.trim().trim_end_matches('/');
        let rest = match rest.split_once("://") {
            Some(("https", rest)) => rest,
            Some(_) => return Err(bad("only HOST:PORT or https://HOST:PORT")),
            None => rest,
        };
        let (host, port) = if let Some(v6) = rest.strip_prefix('[') {
            let (host, after) = v6
                .split_once(']')
                .ok_or_else(|| bad("an IPv6 address needs its closing ]"))?;
            host.parse::<std::net::Ipv6Addr>()
                .map_err(|_| bad("not an IPv6 address in [ ]"))?;
            match after {
                "" => (host, None),
                _ => match after.strip_prefix(':') {
                    Some(port) => (host, Some(port)),
                    None => return Err(bad("expected :PORT after ]")),
                },
            }
        } else {
            match rest.rsplit_once(':') {
                Some((host, port)) => (host, Some(port)),
                None => (rest, None),
            }
        };
        let port = match port {
            Some(p) => parse_port(p).map_err(|e| bad(&e))?,
            None => 443,
        };
        let name_ok = !host.is_empty()
            && host.len() <= 253
            && host
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b".-:".contains(&b))
            && rustls::pki_types::ServerName::try_from(host).is_ok();
        if !name_ok {
            return Err(bad("expected HOST:PORT, HOST a DNS name or an IP address"));
        }
        Ok(Self {
            host: host.to_owned(),
            port,
        })
    }

    /// Whether the host is an IP address (no name to resolve).
    fn host_is_ipv6(&self) -> bool {
        self.host.contains(':')
    }
}

impl std::fmt::Display for ProxyAddress {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.host_is_ipv6() {
            write!(f, "[{}]:{}", self.host, self.port)
        } else {
            write!(f, "{}:{}", self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
    use super::*;

    #[test]
    fn targets_as_ssh_spells_them() {
        assert_eq!(
            Target::parse("root@web-1:22").unwrap(),
            Target {
                login: "root".into(),
                node: "web-1".into(),
                port: Some(22)
            }
        );
        let t = Target::parse("deploy@db-1.internal").unwrap();
        assert_eq!(
            (t.login.as_str(), t.node.as_str(), t.port),
            ("deploy", "db-1.internal", None)
        );
        // A node name may hold '@' (the roles' rules allow it); the login cannot.
        let t = Target::parse("ci@build@eu:2222").unwrap();
        assert_eq!(
            (t.login.as_str(), t.node.as_str(), t.port),
            ("ci", "build@eu", Some(2222))
        );
    }

    #[test]
    fn bad_targets_are_refused_with_what_is_wrong() {
        for (text, says) in [
            ("", "expected USER@NODE:PORT"),
            ("web-1:22", "expected USER@NODE:PORT"),
            ("@web-1:22", "login"),
            ("root@:22", "node name"),
            ("root@web-1:", "port"),
            ("root@web-1:0", "1-65535"),
            ("root@web-1:65536", "1-65535"),
            ("root@web-1:123456", "not a number"),
            ("root@web-1:-1", "not a number"),
            ("root@web-1:+22", "not a number"),
            ("root@web-1:22 ", "not a number"),
            ("Root@web-1:22", "login"),
            ("ro ot@web-1:22", "login"),
            // Anything that would end the preamble line or add a field.
            ("root@web-1 login=admin:22", "node name"),
            ("root@web-1\nsignet-ssh/1:22", "node name"),
            ("root\n@web-1:22", "login"),
            ("root@web-1\r:22", "node name"),
            ("root@-web:22", "node name"),
            ("root@wéb:22", "node name"),
            ("root@[::1]:22", "node name"),
            ("root@web/1:22", "node name"),
        ] {
            let err = Target::parse(text).unwrap_err();
            assert!(err.contains(says), "{text:?}: {err}");
            assert!(!err.contains('\n') && !err.contains('\r'), "{err:?}");
        }
        let long = format!("root@{}:22", "a".repeat(65));
        assert!(Target::parse(&long).unwrap_err().contains("longer"));
        let long_login = format!("{}@web:22", "a".repeat(33));
        assert!(Target::parse(&long_login).is_err());
        // The error shows a hostile value escaped and cut.
        let err = Target::parse(&format!("x{}", "\u{1b}[31m".repeat(100))).unwrap_err();
        assert!(!err.contains('\u{1b}') && err.len() < 1000, "{err}");
    }

    #[test]
    fn proxy_addresses() {
        let a = ProxyAddress::parse("proxy.example:443").unwrap();
        assert_eq!((a.host.as_str(), a.port), ("proxy.example", 443));
        assert_eq!(ProxyAddress::parse("proxy.example").unwrap().port, 443);
        assert_eq!(
            ProxyAddress::parse("https://localhost:8443/")
                .unwrap()
                .to_string(),
            "localhost:8443"
        );
        let v6 = ProxyAddress::parse("[::1]:8443").unwrap();
        assert_eq!((v6.host.as_str(), v6.port), ("::1", 8443));
        assert_eq!(v6.to_string(), "[::1]:8443");
        assert_eq!(
            ProxyAddress::parse("127.0.0.1:1").unwrap().to_string(),
            "127.0.0.1:1"
        );
        for bad in [
            "",
            ":443",
            "http://proxy:80",
            "proxy:0",
            "proxy:http",
            "proxy:443/x",
            "user@proxy:443",
            "pro xy:443",
            "[::1",
            "[nope]:1",
            "[::1]x",
            "proxy:\n443",
            "-proxy:443",
        ] {
            assert!(ProxyAddress::parse(bad).is_err(), "{bad:?}");
        }
    }
}
