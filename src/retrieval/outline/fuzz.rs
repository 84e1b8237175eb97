use crate::text::document::TextChange;
use crate::text::position::LinePosition;

/// A small deterministic generator (xorshift), for the random edits.
pub struct Rng(pub u64);

impl Rng {
    pub fn below(&mut self, n: usize) -> usize {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 % n.max(1) as u64) as usize
    }
}

pub const PY_SEED: &str = r#"import os
    from typing import List

    LIMIT = 10
    NAMES: List[str] = []


    def top(a, b=1):
    """Adds."""
    return a + b


    @decorator
    def decorated(x):
    def inner(y):
        return y
    return inner(x)


    class Shape(Base):
    sides: int = 0
    color = "red"

    def __init__(self, sides):
        self.sides = sides

    @property
    def area(self) -> float:
        return 0.0

    @staticmethod
    @cache
    def make(n):
        return Shape(n)

    class Meta:
        ordering = ["sides"]


    class Empty: pass


    if os.environ.get("X"):
    def maybe():
        pass
    "#;

pub const PY_POOL: &[&str] = &[
    "def helper(x):",
    "    return x",
    "class Extra(Base):",
    "@property",
    "@staticmethod",
    "    value = compute_total(items)",
    "x = (",
    ")",
    "\"\"\"",
    "if x:",
    "    pass",
    "async def run(self):",
    "CONSTANT = 42",
    "    name: str = 'a'",
    "        return self.name",
    "try:",
    "except Exception:",
    "# comment",
    "",
    "    def method(self, a):",
];

pub const JAVA_SEED: &str = r#"package demo;

    import java.util.List;

    /** A shape. */
    public class Shape extends Base implements Named {
    private int sides = 0;
    static final String NAME = "shape", OTHER = "x";

    public Shape(int sides) {
        this.sides = sides;
    }

    @Override
    public String name() {
        return NAME;
    }

    public int area() {
        return sides * 2;
    }

    enum Kind { ROUND, SQUARE; int weight() { return 1; } }

    interface Visitor {
        void visit(Shape s);
    }

    static class Builder {
        private int n;
        Builder sides(int n) { this.n = n; return this; }
    }
    }

    record Point(int x, int y) {}
    "#;

pub const JAVA_POOL: &[&str] = &[
    "public void run() {",
    "}",
    "class Inner {",
    "@Override",
    "private int count = 0;",
    "/*",
    "*/",
    "enum E { A, B }",
    "int a, b;",
    "static final String NAME = \"x\";",
    "interface I { void f(); }",
    "{",
    "return 1;",
    "// comment",
    "",
    "    int value = compute(items);",
];

const CHARS: &[&str] = &[
    "(", ")", "\"", "'", ":", "\n", " ", "    ", "@", "{", "}", ";", "#", "x", "def ", "\n\n",
];

pub fn random_change(rng: &mut Rng, text: &str, pool: &[&str]) -> TextChange {
    let lines: Vec<&str> = text.split('\n').collect();
    let at = |rng: &mut Rng, line: usize| {
        let line = line.min(lines.len().saturating_sub(1));
        let len = lines.get(line).map_or(0, |l| l.len());
        LinePosition {
            line: line as u32,
            character: rng.below(len + 1) as u32,
        }
    };
    let line = rng.below(lines.len() + 1);
    match rng.below(6) {
        // A whole line from the pool, indented somehow.
        0 | 1 => {
            let indent = ["", "    ", "        "][rng.below(3)];
            let text = format!("{indent}{}\n", pool[rng.below(pool.len())]);
            let p = LinePosition {
                line: line as u32,
                character: 0,
            };
            TextChange {
                range: Some((p, p)),
                text,
            }
        }
        // A few characters.
        2 | 3 => {
            let p = at(rng, line);
            TextChange {
                range: Some((p, p)),
                text: CHARS[rng.below(CHARS.len())].to_string(),
            }
        }
        // A deletion within a line or over a few lines.
        _ => {
            let a = at(rng, line);
            let more = rng.below(4);
            let b = at(rng, line + more);
            let (a, b) = if (b.line, b.character) < (a.line, a.character) {
                (b, a)
            } else {
                (a, b)
            };
            TextChange {
                range: Some((a, b)),
                text: String::new(),
            }
        }
    }
}
