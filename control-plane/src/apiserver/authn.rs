//! Authentication: who is calling. Client certificates signed by the
//! cluster CA (user = CN, groups = O) and bearer tokens from a token file.

/// An authenticated caller.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UserInfo {
    pub name: String,
    pub uid: String,
    pub groups: Vec<String>,
}
