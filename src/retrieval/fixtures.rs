//! Test fixtures shared by the index, query and memo tests.

use std::path::{Path, PathBuf};

use super::{Index, Query, Root};

pub(super) fn index() -> Index {
    let mut ix = Index::new(vec![Root {
        path: PathBuf::from("/ws"),
        name: "ws".into(),
    }]);
    ix.update(
        Path::new("/ws/geo/shapes.py"),
        "class Circle:\n    def __init__(self, radius):\n        self.radius = radius\n\n    def circumference(self):\n        return 2 * 3.14159 * self.radius\n",
    );
    ix.update(
        Path::new("/ws/util/strings.py"),
        "def slugify(title):\n    return title.lower().replace(' ', '-')\n",
    );
    ix
}

pub(super) fn query<'a>(path: &'a Path, prefix: &'a str) -> Query<'a> {
    Query {
        path,
        line: prefix.matches('\n').count(),
        prefix,
        suffix: "",
    }
}
