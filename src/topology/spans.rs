//! Where each value of a YAML document is: a map from field path (`cluster.nodes[2].port`) to
//! line and column. Built once per file so that validation, which works on typed values, can
//! point the operator at the exact place of every error.

use std::collections::HashMap;
use std::fmt;

use serde::de::{Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_saphyr::Spanned;

/// 1-based line and column.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pos {
    pub line: u64,
    pub column: u64,
}

impl fmt::Display for Pos {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.line, self.column)
    }
}

#[derive(Debug, Default)]
pub struct SpanIndex {
    map: HashMap<String, Pos>,
    /// Where the key of each mapping entry is (the parser reports type errors there).
    keys: HashMap<String, Pos>,
}

impl SpanIndex {
    /// Index `source`. A document that does not parse yields an empty index; the typed parse
    /// reports the syntax error with its own location.
    pub fn build(source: &str) -> SpanIndex {
        let mut index = SpanIndex::default();
        if let Ok(root) =
            serde_saphyr::from_str_with_options::<Spanned<Node>>(source, super::describe::limits())
        {
            index.walk(String::new(), &root);
        }
        index
    }

    fn walk(&mut self, path: String, node: &Spanned<Node>) {
        let pos = Pos {
            line: node.referenced.line(),
            column: node.referenced.column(),
        };
        match &node.value {
            Node::Map(entries) => {
                for (key, key_pos, child) in entries {
                    let child_path = if path.is_empty() {
                        key.clone()
                    } else {
                        format!("{path}.{key}")
                    };
                    self.keys.insert(child_path.clone(), *key_pos);
                    self.walk(child_path, child);
                }
            }
            Node::Seq(items) => {
                for (i, child) in items.iter().enumerate() {
                    self.walk(format!("{path}[{i}]"), child);
                }
            }
            Node::Scalar => {}
        }
        self.map.insert(path, pos);
    }

    /// The field the parser stopped at: the deepest path whose key (or, failing that, whose
    /// value) starts at `pos`.
    pub fn path_at(&self, pos: Pos) -> Option<String> {
        deepest(&self.keys, pos).or_else(|| deepest(&self.map, pos))
    }

    /// The deepest mapping or list that starts at `pos` (a missing field's parent).
    pub fn value_at(&self, pos: Pos) -> Option<String> {
        deepest(&self.map, pos)
    }

    /// Position of `path`, or of its nearest indexed ancestor (a missing field is reported at
    /// the mapping that should hold it).
    pub fn find(&self, path: &str) -> Option<Pos> {
        let mut p = path;
        loop {
            if let Some(pos) = self.map.get(p) {
                return Some(*pos);
            }
            match p.rfind(['.', '[']) {
                Some(cut) => p = &p[..cut],
                // A missing top-level field: the document itself.
                None if !p.is_empty() => p = "",
                None => return None,
            }
        }
    }
}

fn deepest(map: &HashMap<String, Pos>, pos: Pos) -> Option<String> {
    map.iter()
        .filter(|(path, p)| **p == pos && !path.is_empty())
        .map(|(path, _)| path)
        .max_by_key(|path| (path.len(), path.as_str()))
        .cloned()
}

enum Node {
    Map(Vec<(String, Pos, Spanned<Node>)>),
    Seq(Vec<Spanned<Node>>),
    Scalar,
}

impl<'de> Deserialize<'de> for Node {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
}

struct NodeVisitor;

macro_rules! scalar {
    ($($name:ident: $ty:ty),*) => {
        $(fn $name<E>(self, _: $ty) -> Result<Node, E> { Ok(Node::Scalar) })*
    };
}

impl<'de> Visitor<'de> for NodeVisitor {
    type Value = Node;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("any YAML value")
    }
    scalar!(visit_bool: bool, visit_i64: i64, visit_u64: u64, visit_f64: f64, visit_str: &str,
        visit_i128: i128, visit_u128: u128);
    fn visit_unit<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_none<E>(self) -> Result<Node, E> {
        Ok(Node::Scalar)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Node, D::Error> {
        d.deserialize_any(NodeVisitor)
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Node, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<Spanned<Node>>()? {
            items.push(item);
        }
        Ok(Node::Seq(items))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Node, A::Error> {
        let mut entries = Vec::new();
        while let Some(key) = map.next_key::<Spanned<KeyString>>()? {
            let value = map.next_value::<Spanned<Node>>()?;
            let pos = Pos {
                line: key.referenced.line(),
                column: key.referenced.column(),
            };
            entries.push((key.value.0, pos, value));
        }
        Ok(Node::Map(entries))
    }
}

/// Mapping keys as text, whatever their YAML type (`7000:` is a valid key in `config`).
struct KeyString(String);

impl<'de> Deserialize<'de> for KeyString {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = KeyString;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a scalar key")
            }
            fn visit_str<E>(self, v: &str) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_u64<E>(self, v: u64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_i64<E>(self, v: i64) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
            fn visit_bool<E>(self, v: bool) -> Result<KeyString, E> {
                Ok(KeyString(v.to_string()))
            }
        }
        d.deserialize_any(V)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn indexes_nested_paths() {
        let src = "name: x\nhosts:\n  - name: a\n    address: 1.2.3.4\ncluster:\n  nodes:\n    - port: 7000\n";
        let idx = SpanIndex::build(src);
        assert_eq!(idx.find("name").map(|p| p.line), Some(1));
        assert_eq!(idx.find("hosts[0].address").map(|p| p.line), Some(4));
        assert_eq!(idx.find("cluster.nodes[0].port").map(|p| p.line), Some(7));
        // A missing field falls back to its parent mapping.
        assert_eq!(idx.find("cluster.nodes[0].shard").map(|p| p.line), Some(7));
    }
}
