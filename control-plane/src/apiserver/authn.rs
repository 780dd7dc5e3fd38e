//! Authentication: who is calling. Client certificates signed by the
//! cluster CA (user = CN, groups = O) and bearer tokens from a token file
//! in kube-apiserver's `--token-auth-file` format.
//!
//! This module only turns credentials into a [`UserInfo`]; it does not
//! verify certificate chains (rustls did that during the handshake, against
//! the cluster CA, see [`crate::apiserver::server::tls_config`]) and it does
//! not decide what a user may do, nor what happens to anonymous requests
//! (the server does).

use std::path::{Path, PathBuf};

use rustls::pki_types::CertificateDer;

/// Group every authenticated user belongs to.
pub const AUTHENTICATED_GROUP: &str = "system:authenticated";
/// Group of anonymous callers.
pub const UNAUTHENTICATED_GROUP: &str = "system:unauthenticated";
/// User name of anonymous callers.
pub const ANONYMOUS_USER: &str = "system:anonymous";

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}

impl UserInfo {
    /// The anonymous caller: `system:anonymous` in `system:unauthenticated`.
    pub fn anonymous() -> Self {
        Self {
            name: ANONYMOUS_USER.to_owned(),
            uid: String::new(),
            groups: vec![UNAUTHENTICATED_GROUP.to_owned()],
        }
    }
}

/// Failures loading the token file.
#[derive(Debug, thiserror::Error)]
pub enum AuthnError {
    #[error("reading token file {path}: {source}")]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("token file {path}, line {line}: {reason}")]
    Malformed {
        path: PathBuf,
        line: usize,
        reason: String,
    },
}

struct TokenEntry {
    token: Vec<u8>,
    user: UserInfo,
}

/// Turns a request's credentials into a user.
pub struct Authenticator {
    tokens: Vec<TokenEntry>,
}

impl std::fmt::Debug for Authenticator {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never print tokens.
        f.debug_struct("Authenticator")
            .field("tokens", &self.tokens.len())
            .finish()
    }
}

impl Authenticator {
    /// Builds an authenticator that accepts client certificates and, when
    /// `token_file` is given, the bearer tokens it lists.
    ///
    /// The file is CSV as kube-apiserver reads it: `token,user,uid` and an
    /// optional fourth column of comma-separated groups, quoted when it
    /// holds commas (`"group1,group2"`); further columns are ignored. Blank
    /// lines and lines starting with `#` are skipped. Unlike kube-apiserver,
    /// which only warns, an empty token, an empty user name or a token
    /// listed twice is an error.
    pub fn new(token_file: Option<&Path>) -> Result<Authenticator, AuthnError> {
        let Some(path) = token_file else {
            return Ok(Self { tokens: Vec::new() });
        };
        let text = std::fs::read_to_string(path).map_err(|source| AuthnError::Read {
            path: path.to_owned(),
            source,
        })?;
        let tokens = parse_token_file(&text).map_err(|(line, reason)| AuthnError::Malformed {
            path: path.to_owned(),
            line,
            reason,
        })?;
        tracing::info!(path = %path.display(), tokens = tokens.len(), "loaded token file");
        Ok(Self { tokens })
    }

    /// How many bearer tokens are known.
    pub fn token_count(&self) -> usize {
        self.tokens.len()
    }

    /// The caller's identity, from the first credential that identifies one:
    /// a client certificate (`peer_certs[0]` is the leaf; its chain must
    /// already have been verified by the TLS layer) whose CN is the user
    /// and whose O attributes are the groups, else an
    /// `Authorization: Bearer <token>` header naming a known token. Both add
    /// `system:authenticated`. `None` when neither identifies anyone.
    pub fn authenticate(
        &self,
        peer_certs: Option<&[CertificateDer<'static>]>,
        authorization: Option<&http::HeaderValue>,
    ) -> Option<UserInfo> {
        if let Some(user) = peer_certs
            .and_then(|certs| certs.first())
            .and_then(user_from_certificate)
        {
            return Some(user);
        }
        let token = bearer_token(authorization?)?;
        // Look at every entry, whatever matched, comparing in constant time.
        let mut found: Option<&TokenEntry> = None;
        for entry in &self.tokens {
            if constant_time_eq(&entry.token, token) && found.is_none() {
                found = Some(entry);
            }
        }
        found.map(|entry| with_authenticated(entry.user.clone()))
    }
}

/// User = CN (none or empty: not a user), groups = every O.
fn user_from_certificate(cert: &CertificateDer<'static>) -> Option<UserInfo> {
    let (_, x509) = x509_parser::parse_x509_certificate(cert).ok()?;
    let subject = x509.subject();
    let name = subject.iter_common_name().next()?.as_str().ok()?;
    if name.is_empty() {
        return None;
    }
    let groups = subject
        .iter_organization()
        .filter_map(|o| o.as_str().ok())
        .filter(|o| !o.is_empty())
        .map(str::to_owned)
        .collect();
    Some(with_authenticated(UserInfo {
        name: name.to_owned(),
        uid: String::new(),
        groups,
    }))
}

fn with_authenticated(mut user: UserInfo) -> UserInfo {
    if !user.groups.iter().any(|g| g == AUTHENTICATED_GROUP) {
        user.groups.push(AUTHENTICATED_GROUP.to_owned());
    }
    user
}

/// The token of `Bearer <token>` as kube-apiserver reads it: scheme
/// case-insensitive, token the second space-separated part.
fn bearer_token(header: &http::HeaderValue) -> Option<&[u8]> {
    let value = header.to_str().ok()?.trim();
    let mut parts = value.splitn(3, ' ');
    let scheme = parts.next()?;
    if !scheme.eq_ignore_ascii_case("bearer") {
        return None;
    }
    let token = parts.next()?;
    (!token.is_empty()).then_some(token.as_bytes())
}

/// Equal-length inputs are compared without an early exit; lengths are not
/// secret.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    let diff = a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y));
    std::hint::black_box(diff) == 0
}

/// Parses the token file; errors carry the 1-based line number.
fn parse_token_file(text: &str) -> Result<Vec<TokenEntry>, (usize, String)> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut entries: Vec<(usize, TokenEntry)> = Vec::new();
    for (index, line) in text.lines().enumerate() {
        let number = index + 1;
        let trimmed = line.trim();
        if trimmed.is_empty() || trimmed.starts_with('#') {
            continue;
        }
        let fields = parse_csv_line(line).map_err(|reason| (number, reason))?;
        if fields.len() < 3 {
            return Err((
                number,
                format!(
                    "needs at least 3 columns (token, user name, user uid), found {}",
                    fields.len()
                ),
            ));
        }
        let token = &fields[0];
        if token.is_empty() {
            return Err((number, "empty token".to_owned()));
        }
        if token.chars().any(char::is_whitespace) {
            return Err((number, "token contains whitespace".to_owned()));
        }
        if fields[1].is_empty() {
            return Err((number, "empty user name".to_owned()));
        }
        if let Some((first, _)) = entries.iter().find(|(_, e)| e.token == token.as_bytes()) {
            return Err((number, format!("token already listed on line {first}")));
        }
        let groups = fields
            .get(3)
            .map(|g| {
                g.split(',')
                    .map(str::trim)
                    .filter(|g| !g.is_empty())
                    .map(str::to_owned)
                    .collect()
            })
            .unwrap_or_default();
        entries.push((
            number,
            TokenEntry {
                token: token.as_bytes().to_vec(),
                user: UserInfo {
                    name: fields[1].clone(),
                    uid: fields[2].clone(),
                    groups,
                },
            },
        ));
    }
    Ok(entries.into_iter().map(|(_, e)| e).collect())
}

/// One CSV record on one line, as Go's `encoding/csv` reads it with
/// `TrimLeadingSpace`: fields separated by commas, a field starting with
/// `"` is quoted (may contain commas, `""` is a literal quote) and must be
/// followed by a comma or the end of the line. Unquoted fields are trimmed.
fn parse_csv_line(line: &str) -> Result<Vec<String>, String> {
    let mut fields = Vec::new();
    let mut chars = line.chars().peekable();
    loop {
        while chars.peek().is_some_and(|c| *c == ' ' || *c == '\t') {
            chars.next();
        }
        let mut field = String::new();
        if chars.peek() == Some(&'"') {
            chars.next();
            loop {
                match chars.next() {
                    None => return Err("quoted field is not closed".to_owned()),
                    Some('"') if chars.peek() == Some(&'"') => {
                        chars.next();
                        field.push('"');
                    }
                    Some('"') => break,
                    Some(c) => field.push(c),
                }
            }
            fields.push(field);
            match chars.next() {
                None => return Ok(fields),
                Some(',') => {}
                Some(c) => {
                    return Err(format!(
                        "unexpected {c:?} after a closing quote (expected ',' or end of line)"
                    ));
                }
            }
        } else {
            loop {
                match chars.next() {
                    None => {
                        fields.push(field.trim().to_owned());
                        return Ok(fields);
                    }
                    Some(',') => {
                        fields.push(field.trim().to_owned());
                        break;
                    }
                    Some('"') => {
                        return Err(
                            "'\"' inside an unquoted field (quote the whole field)".to_owned()
                        );
                    }
                    Some(c) => field.push(c),
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Vec<(String, UserInfo)> {
        parse_token_file(text)
            .expect("parses")
            .into_iter()
            .map(|e| (String::from_utf8(e.token).expect("utf8"), e.user))
            .collect()
    }

    fn error_line(text: &str) -> (usize, String) {
        match parse_token_file(text) {
            Ok(_) => panic!("{text:?} parsed"),
            Err(e) => e,
        }
    }

    fn user(name: &str, uid: &str, groups: &[&str]) -> UserInfo {
        UserInfo {
            name: name.into(),
            uid: uid.into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    #[test]
    fn token_file_columns_quoted_groups_comments_and_blank_lines() {
        let text = "\u{feff}# tokens\n\
                    \n\
                    abc123,alice,uid-1,\"dev,ops\"\n\
                    \x20 # indented comment\n\
                    def456, bob ,uid-2\n\
                    ghi789,carol,uid-3,single,extra-column\n\
                    jkl000,dave,,\"with \"\"quote\"\", x\"\r\n";
        assert_eq!(
            parse(text),
            vec![
                ("abc123".into(), user("alice", "uid-1", &["dev", "ops"])),
                ("def456".into(), user("bob", "uid-2", &[])),
                ("ghi789".into(), user("carol", "uid-3", &["single"])),
                ("jkl000".into(), user("dave", "", &["with \"quote\"", "x"])),
            ]
        );
    }

    #[test]
    fn malformed_token_file_lines_are_named() {
        let (line, reason) = error_line("# c\nok,u,1\nonly,two\n");
        assert_eq!(line, 3);
        assert!(reason.contains("at least 3 columns"), "{reason}");

        let (line, reason) = error_line("t,u,1,\"a,b\n");
        assert_eq!(line, 1);
        assert!(reason.contains("not closed"), "{reason}");

        let (line, reason) = error_line("\nt,u,1,\"a\"b\n");
        assert_eq!(line, 2);
        assert!(reason.contains("after a closing quote"), "{reason}");

        let (line, reason) = error_line("t,u\"x,1\n");
        assert_eq!(line, 1);
        assert!(reason.contains("unquoted"), "{reason}");

        let (line, reason) = error_line(",u,1\n");
        assert_eq!((line, reason.as_str()), (1, "empty token"));

        let (line, reason) = error_line("t,,1\n");
        assert_eq!((line, reason.as_str()), (1, "empty user name"));

        let (line, reason) = error_line("t,a,1\n\nt,b,2\n");
        assert_eq!(line, 3);
        assert!(reason.contains("line 1"), "{reason}");
    }

    #[test]
    fn new_reports_path_and_line() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("tokens.csv");
        std::fs::write(&path, "good,u,1\nbad\n").expect("write");
        let err = Authenticator::new(Some(&path)).expect_err("malformed");
        let msg = err.to_string();
        assert!(
            msg.contains("tokens.csv") && msg.contains("line 2"),
            "{msg}"
        );

        let missing = dir.path().join("absent.csv");
        let err = Authenticator::new(Some(&missing)).expect_err("missing");
        assert!(matches!(err, AuthnError::Read { .. }), "{err}");
    }

    #[test]
    fn bearer_tokens_authenticate_with_authenticated_group() {
        let authn = Authenticator {
            tokens: parse_token_file("abc123,alice,uid-1,\"dev,ops\"\nxyz,bob,2\n")
                .expect("parses"),
        };
        let header = |s: &str| http::HeaderValue::from_str(s).expect("header");
        assert_eq!(
            authn.authenticate(None, Some(&header("Bearer abc123"))),
            Some(user("alice", "uid-1", &["dev", "ops", AUTHENTICATED_GROUP]))
        );
        assert_eq!(
            authn.authenticate(None, Some(&header("bearer xyz"))),
            Some(user("bob", "2", &[AUTHENTICATED_GROUP]))
        );
        for wrong in [
            "Bearer abc12",
            "Bearer abc1234",
            "Basic abc123",
            "Bearer ",
            "abc123",
        ] {
            assert_eq!(
                authn.authenticate(None, Some(&header(wrong))),
                None,
                "{wrong}"
            );
        }
        assert_eq!(authn.authenticate(None, None), None);
        assert_eq!(authn.authenticate(Some(&[]), None), None);
    }

    #[test]
    fn client_certificate_user_is_cn_and_groups_are_o() {
        let dir = tempfile::tempdir().expect("tempdir");
        let pki = crate::apiserver::pki::ensure(dir.path(), &[]).expect("pki");
        let der = |pem: &str| {
            use rustls::pki_types::pem::PemObject;
            CertificateDer::from_pem_slice(pem.as_bytes()).expect("pem")
        };
        let authn = Authenticator::new(None).expect("authn");
        assert_eq!(
            authn.authenticate(Some(&[der(&pki.admin_cert_pem)]), None),
            Some(user(
                "kubernetes-admin",
                "",
                &["system:masters", AUTHENTICATED_GROUP]
            ))
        );
        let (cert, _) = pki
            .issue_client_certificate("system:node:n1", None)
            .expect("issue");
        assert_eq!(
            authn.authenticate(Some(&[der(&cert)]), None),
            Some(user("system:node:n1", "", &[AUTHENTICATED_GROUP]))
        );
        // Garbage is not a user.
        assert_eq!(
            authn.authenticate(Some(&[CertificateDer::from(vec![1u8, 2, 3])]), None),
            None
        );
    }
}
