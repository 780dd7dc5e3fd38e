//! Field paths as apimachinery's `field.Path` renders them:
//! `spec.containers[0].image`, `metadata.labels`, `data[key.name]`.

use std::fmt;

/// A field path; the root is the empty path.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub(crate) struct Path(String);

impl Path {
    /// A path starting at the top-level field `name` (`""` is the root).
    pub fn root(name: &str) -> Path {
        Path(name.to_owned())
    }

    /// `a.b` for a struct field.
    pub fn child(&self, name: &str) -> Path {
        if self.0.is_empty() {
            Path(name.to_owned())
        } else {
            Path(format!("{}.{name}", self.0))
        }
    }

    /// `a.b.c` for several nested struct fields.
    pub fn children(&self, names: &[&str]) -> Path {
        names.iter().fold(self.clone(), |p, n| p.child(n))
    }

    /// `a[3]` for a list element.
    pub fn index(&self, i: usize) -> Path {
        Path(format!("{}[{i}]", self.0))
    }

    /// `a[key]` for a map entry.
    pub fn key(&self, key: &str) -> Path {
        Path(format!("{}[{key}]", self.0))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl fmt::Display for Path {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl From<Path> for String {
    fn from(p: Path) -> String {
        p.0
    }
}

impl From<&Path> for String {
    fn from(p: &Path) -> String {
        p.0.clone()
    }
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_field_path() {
        let p = Path::root("spec")
            .child("containers")
            .index(0)
            .child("image");
        assert_eq!(p.as_str(), "spec.containers[0].image");
        assert_eq!(
            Path::root("").child("data").key("a.b").as_str(),
            "data[a.b]"
        );
        assert_eq!(
            Path::root("spec")
                .children(&["template", "metadata", "labels"])
                .as_str(),
            "spec.template.metadata.labels"
        );
    }
}
