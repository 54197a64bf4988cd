//! The located YAML tree: every value and every key keeps its line and
//! column, so any later check can point at it.
//!
//! Built from `saphyr-parser` events. The input is hostile until proven
//! otherwise: its size, nesting depth and the number of values after alias
//! expansion ("billion laughs") are capped by [`Limits`], invalid UTF-8 is
//! reported with its position, and nothing here panics or grows without
//! bound.

use std::collections::HashMap;
use std::collections::hash_map::Entry as MapEntry;

use saphyr_parser::{Event, Parser, ScalarStyle, ScanError, Span, StrInput, Tag};

use super::diagnostic::{Issue, Mark};
use super::path::{FieldPath, Segment};

/// Caps on what a YAML document may cost to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Largest file accepted, in bytes. Specs are a few kilobytes; 1 MiB
    /// leaves room for inline compose files.
    pub max_bytes: usize,
    /// Deepest nesting of mappings and lists. The spec needs 6.
    pub max_depth: usize,
    /// Most values in the document, counting every alias expansion in
    /// full. This is what defeats exponential alias bombs.
    pub max_nodes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            max_bytes: 1024 * 1024,
            max_depth: 64,
            max_nodes: 100_000,
        }
    }
}

/// How a scalar was written, which decides how it is typed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Style {
    /// Unquoted: typed by the YAML 1.2 core schema (`80` is a number).
    Plain,
    /// Single- or double-quoted: always text.
    Quoted,
    /// A `|` block: always text, lines kept as written.
    Literal,
    /// A `>` block: always text, lines folded.
    Folded,
}

/// A type forced by an explicit core tag (`!!str 80`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ForcedType {
    Str,
    Int,
    Float,
    Bool,
    Null,
}

/// A scalar as written.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Scalar {
    pub text: String,
    pub style: Style,
    pub forced: Option<ForcedType>,
}

/// A scalar's value under the YAML 1.2 core schema.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) enum Typed<'a> {
    Null,
    Bool(bool),
    Int(i64),
    Float(f64),
    Str(&'a str),
}

impl Scalar {
    /// A text scalar.
    #[cfg(test)]
    pub fn text(text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            style: Style::Quoted,
            forced: None,
        }
    }

    /// The typed value. A forced tag that does not fit the text yields
    /// the text (the mismatch is reported as a type error later).
    pub fn typed(&self) -> Typed<'_> {
        match self.forced {
            Some(ForcedType::Str) => return Typed::Str(&self.text),
            Some(ForcedType::Null) => return Typed::Null,
            Some(_) => return resolve_plain(&self.text),
            None => {}
        }
        match self.style {
            Style::Plain => resolve_plain(&self.text),
            Style::Quoted | Style::Literal | Style::Folded => Typed::Str(&self.text),
        }
    }
}

/// Types a plain scalar by the YAML 1.2 core schema. `yes`, `on` and
/// friends are text, as YAML 1.2 says.
pub(crate) fn resolve_plain(s: &str) -> Typed<'_> {
    match s {
        "" | "~" | "null" | "Null" | "NULL" => return Typed::Null,
        "true" | "True" | "TRUE" => return Typed::Bool(true),
        "false" | "False" | "FALSE" => return Typed::Bool(false),
        _ => {}
    }
    if let Some(hex) = s.strip_prefix("0x") {
        if !hex.is_empty()
            && hex.bytes().all(|b| b.is_ascii_hexdigit())
            && let Ok(n) = i64::from_str_radix(hex, 16)
        {
            return Typed::Int(n);
        }
        return Typed::Str(s);
    }
    if let Some(oct) = s.strip_prefix("0o") {
        if !oct.is_empty()
            && oct.bytes().all(|b| (b'0'..=b'7').contains(&b))
            && let Ok(n) = i64::from_str_radix(oct, 8)
        {
            return Typed::Int(n);
        }
        return Typed::Str(s);
    }
    let digits = s.strip_prefix(['-', '+']).unwrap_or(s);
    if !digits.is_empty() && digits.bytes().all(|b| b.is_ascii_digit()) {
        return match s.parse::<i64>() {
            Ok(n) => Typed::Int(n),
            Err(_) => s.parse::<f64>().map_or(Typed::Str(s), Typed::Float),
        };
    }
    if is_core_float(s)
        && let Ok(f) = s.parse::<f64>()
        && f.is_finite()
    {
        return Typed::Float(f);
    }
    Typed::Str(s)
}

/// `[-+]? ( \. [0-9]+ | [0-9]+ ( \. [0-9]* )? ) ( [eE] [-+]? [0-9]+ )?`
fn is_core_float(s: &str) -> bool {
    let b = s.as_bytes();
    let mut i = 0;
    if matches!(b.first(), Some(b'-' | b'+')) {
        i += 1;
    }
    let int_start = i;
    while i < b.len() && b[i].is_ascii_digit() {
        i += 1;
    }
    let int_digits = i - int_start;
    let mut frac_digits = 0;
    if i < b.len() && b[i] == b'.' {
        i += 1;
        let f = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        frac_digits = i - f;
    } else if int_digits == 0 {
        return false;
    }
    if int_digits == 0 && frac_digits == 0 {
        return false;
    }
    if i < b.len() && matches!(b[i], b'e' | b'E') {
        i += 1;
        if matches!(b.get(i), Some(b'-' | b'+')) {
            i += 1;
        }
        let e = i;
        while i < b.len() && b[i].is_ascii_digit() {
            i += 1;
        }
        if i == e {
            return false;
        }
    }
    i == b.len()
}

/// Where a node came from: the file, or a built-in template (whose
/// nodes are all placed at the `template` key of the file).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Origin {
    File,
    Template(&'static str),
}

/// A value with its position.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Node {
    /// Where the value starts.
    pub mark: Mark,
    /// Where its key starts, when it is the value of a mapping entry.
    pub key_mark: Option<Mark>,
    pub origin: Origin,
    pub kind: Kind,
}

/// The shape of a value.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Kind {
    Scalar(Scalar),
    Seq(Vec<Node>),
    Map(Vec<Entry>),
}

/// A mapping entry. Keys are text; entries keep their written order.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Entry {
    pub key: String,
    pub key_mark: Mark,
    pub value: Node,
}

impl Node {
    /// A node of `kind` at `mark`.
    pub fn new(mark: Mark, kind: Kind) -> Self {
        Self {
            mark,
            key_mark: None,
            origin: Origin::File,
            kind,
        }
    }

    /// The value under `key`, when this is a mapping that has it.
    pub fn get(&self, key: &str) -> Option<&Node> {
        self.entries()?
            .iter()
            .find(|e| e.key == key)
            .map(|e| &e.value)
    }

    /// The entry for `key`.
    pub fn entry(&self, key: &str) -> Option<&Entry> {
        self.entries()?.iter().find(|e| e.key == key)
    }

    /// The entries, when this is a mapping.
    pub fn entries(&self) -> Option<&[Entry]> {
        match &self.kind {
            Kind::Map(e) => Some(e),
            _ => None,
        }
    }

    /// The items, when this is a list.
    pub fn items(&self) -> Option<&[Node]> {
        match &self.kind {
            Kind::Seq(i) => Some(i),
            _ => None,
        }
    }

    /// The scalar, when this is one.
    pub fn scalar(&self) -> Option<&Scalar> {
        match &self.kind {
            Kind::Scalar(s) => Some(s),
            _ => None,
        }
    }

    /// The text of a scalar that is not null.
    pub fn as_text(&self) -> Option<&str> {
        let s = self.scalar()?;
        match s.typed() {
            Typed::Null => None,
            _ => Some(&s.text),
        }
    }

    /// Whether this is a null scalar (`~`, `null` or nothing at all).
    pub fn is_null(&self) -> bool {
        matches!(self.scalar().map(Scalar::typed), Some(Typed::Null))
    }

    /// The mark to point at for this value: its key when the value is
    /// empty (an empty value has no position of its own worth showing).
    pub fn value_mark(&self) -> Mark {
        match self.key_mark {
            Some(k) if self.is_null() => k,
            _ => self.mark,
        }
    }

    /// Follows `path` as far as it goes; returns the deepest node reached
    /// and whether the whole path was found.
    pub fn locate(&self, path: &FieldPath) -> (&Node, bool) {
        let mut node = self;
        for seg in path.segments() {
            let next = match seg {
                Segment::Key(k) => node.get(k),
                Segment::Index(i) => node.items().and_then(|items| items.get(*i)),
            };
            match next {
                Some(n) => node = n,
                None => return (node, false),
            }
        }
        (node, true)
    }

    /// Number of nodes in this subtree (keys not counted).
    pub fn size(&self) -> usize {
        match &self.kind {
            Kind::Scalar(_) => 1,
            Kind::Seq(items) => 1 + items.iter().map(Node::size).sum::<usize>(),
            Kind::Map(entries) => 1 + entries.iter().map(|e| e.value.size()).sum::<usize>(),
        }
    }

    /// Moves every node of the subtree to `mark` and marks its origin, for
    /// nodes that come from a template rather than the file.
    pub fn relocate(&mut self, mark: Mark, origin: Origin) {
        self.mark = mark;
        self.origin = origin;
        if self.key_mark.is_some() {
            self.key_mark = Some(mark);
        }
        match &mut self.kind {
            Kind::Scalar(_) => {}
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.relocate(mark, origin)),
            Kind::Map(entries) => {
                for e in entries {
                    e.key_mark = mark;
                    e.value.relocate(mark, origin);
                }
            }
        }
    }

    /// Visits every scalar of the subtree with its path.
    pub fn visit_scalars<'a>(
        &'a self,
        path: &mut FieldPath,
        f: &mut dyn FnMut(&FieldPath, &'a Node, &'a Scalar),
    ) {
        match &self.kind {
            Kind::Scalar(s) => f(path, self, s),
            Kind::Seq(items) => {
                for (i, n) in items.iter().enumerate() {
                    path.push(Segment::Index(i));
                    n.visit_scalars(path, f);
                    path.pop();
                }
            }
            Kind::Map(entries) => {
                for e in entries {
                    path.push(Segment::Key(e.key.clone()));
                    e.value.visit_scalars(path, f);
                    path.pop();
                }
            }
        }
    }

    /// Rewrites every scalar of the subtree.
    pub fn map_scalars(&mut self, f: &mut dyn FnMut(&mut Scalar)) {
        match &mut self.kind {
            Kind::Scalar(s) => f(s),
            Kind::Seq(items) => items.iter_mut().for_each(|n| n.map_scalars(f)),
            Kind::Map(entries) => entries.iter_mut().for_each(|e| e.value.map_scalars(f)),
        }
    }

    /// How a message names this value's kind ("a mapping", "the text `x`").
    pub fn describe(&self) -> String {
        match &self.kind {
            Kind::Map(_) => "a mapping".to_owned(),
            Kind::Seq(_) => "a list".to_owned(),
            Kind::Scalar(s) => match s.typed() {
                Typed::Null => "nothing".to_owned(),
                Typed::Bool(b) => format!("`{b}`"),
                Typed::Int(_) | Typed::Float(_) => format!("the number `{}`", short(&s.text)),
                Typed::Str(t) => format!("the text `{}`", short(t)),
            },
        }
    }
}

/// `s` cut to 40 characters for quoting in a message.
pub(crate) fn short(s: &str) -> String {
    let first_line = s.lines().next().unwrap_or("");
    if first_line.chars().count() > 40 || first_line.len() != s.len() {
        let cut: String = first_line.chars().take(40).collect();
        format!("{cut}…")
    } else {
        s.to_owned()
    }
}

/// Parses one YAML document into a located tree.
///
/// Returns the tree and the problems that did not stop reading (duplicate
/// keys, unsupported tags), or, when the document cannot be read at all,
/// the problems that stopped it.
pub(crate) fn parse(bytes: &[u8], limits: &Limits) -> Result<(Node, Vec<Issue>), Vec<Issue>> {
    if bytes.len() > limits.max_bytes {
        return Err(vec![
            Issue::error(
                FieldPath::root(),
                format!(
                    "file is too large: {}, the limit is {}",
                    super::files::size_text(bytes.len() as u64),
                    super::files::size_text(limits.max_bytes as u64)
                ),
            )
            .at(Mark::START),
        ]);
    }
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let text = match std::str::from_utf8(bytes) {
        Ok(t) => t,
        Err(e) => {
            let valid = &bytes[..e.valid_up_to()];
            let prefix = String::from_utf8_lossy(valid);
            let line = prefix.matches('\n').count() + 1;
            let column = prefix.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            return Err(vec![
                Issue::error(
                    FieldPath::root(),
                    format!("file is not valid UTF-8 (at byte {})", e.valid_up_to()),
                )
                .at(Mark::new(to_u32(line), to_u32(column)))
                .hint("save the file as UTF-8"),
            ]);
        }
    };
    let mut b = Builder {
        text,
        events: Parser::new_from_str(text),
        anchors: HashMap::new(),
        nodes: 0,
        limits,
        issues: Vec::new(),
    };
    match b.document() {
        Ok(node) => Ok((node, b.issues)),
        Err(fatal) => {
            let mut all = b.issues;
            all.push(*fatal);
            Err(all)
        }
    }
}

fn to_u32(n: usize) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

fn mark_of(span: &Span) -> Mark {
    Mark::new(to_u32(span.start.line()), to_u32(span.start.col() + 1))
}

/// A problem that stops reading. Boxed to keep the hot `Result`s small.
type Fatal = Box<Issue>;

fn fatal(path: &FieldPath, mark: Mark, message: impl Into<String>) -> Fatal {
    Box::new(Issue::error(path.clone(), message).at(mark))
}

struct Builder<'a> {
    /// The document, to place errors the scanner reports too early.
    text: &'a str,
    events: Parser<'a, StrInput<'a>>,
    /// Completed anchored nodes, by the parser's anchor id.
    anchors: HashMap<usize, Node>,
    /// Nodes built so far, alias expansions included.
    nodes: usize,
    limits: &'a Limits,
    issues: Vec<Issue>,
}

impl<'a> Builder<'a> {
    fn next(&mut self, path: &FieldPath) -> Result<(Event<'a>, Span), Fatal> {
        match self.events.next() {
            Some(Ok(ev)) => Ok(ev),
            Some(Err(e)) => Err(scan_error(path, &e, self.text)),
            None => Err(fatal(
                path,
                Mark::START,
                "unexpected end of the YAML stream",
            )),
        }
    }

    fn document(&mut self) -> Result<Node, Fatal> {
        let root = FieldPath::root();
        let mut doc = None;
        loop {
            let (ev, span) = self.next(&root)?;
            match ev {
                Event::StreamStart | Event::Nothing | Event::DocumentEnd => {}
                Event::StreamEnd => break,
                Event::DocumentStart(_) => {
                    if doc.is_some() {
                        return Err(Box::new(
                            Issue::error(
                                root.clone(),
                                "the file holds more than one YAML document",
                            )
                            .at(mark_of(&span))
                            .hint("a spec is one document: remove the second `---`"),
                        ));
                    }
                    let (ev, span) = self.next(&root)?;
                    let mut path = FieldPath::root();
                    doc = Some(self.node(ev, &span, 0, &mut path)?);
                }
                _ => return Err(fatal(&root, mark_of(&span), "unexpected YAML event")),
            }
        }
        match doc {
            Some(node) if !node.is_null() => Ok(node),
            _ => Err(Box::new(
                Issue::error(root, "the file is empty")
                    .at(Mark::START)
                    .hint("run `fabrik init` to create a commented spec.yaml"),
            )),
        }
    }

    fn charge(&mut self, n: usize, path: &FieldPath, mark: Mark) -> Result<(), Fatal> {
        self.nodes = self.nodes.saturating_add(n);
        if self.nodes > self.limits.max_nodes {
            return Err(Box::new(
                Issue::error(
                    path.clone(),
                    format!(
                        "the document has more than {} values once aliases are expanded",
                        self.limits.max_nodes
                    ),
                )
                .at(mark)
                .hint(
                    "aliases (`*name`) that repeat large parts are refused; write the values out",
                ),
            ));
        }
        Ok(())
    }

    fn node(
        &mut self,
        ev: Event<'a>,
        span: &Span,
        depth: usize,
        path: &mut FieldPath,
    ) -> Result<Node, Fatal> {
        let mark = mark_of(span);
        if depth > self.limits.max_depth {
            return Err(Box::new(
                Issue::error(
                    path.clone(),
                    format!(
                        "values are nested more than {} levels deep",
                        self.limits.max_depth
                    ),
                )
                .at(mark),
            ));
        }
        match ev {
            Event::Scalar(text, style, anchor, tag) => {
                self.charge(1, path, mark)?;
                let forced = self.forced_type(tag.as_deref(), path, mark, false);
                let style = match style {
                    ScalarStyle::Plain => Style::Plain,
                    ScalarStyle::SingleQuoted | ScalarStyle::DoubleQuoted => Style::Quoted,
                    ScalarStyle::Literal => Style::Literal,
                    ScalarStyle::Folded => Style::Folded,
                };
                let node = Node::new(
                    mark,
                    Kind::Scalar(Scalar {
                        text: text.into_owned(),
                        style,
                        forced,
                    }),
                );
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::SequenceStart(anchor, tag) => {
                self.charge(1, path, mark)?;
                self.forced_type(tag.as_deref(), path, mark, true);
                let mut items = Vec::new();
                loop {
                    let (ev, span) = self.next(path)?;
                    if matches!(ev, Event::SequenceEnd) {
                        break;
                    }
                    path.push(Segment::Index(items.len()));
                    let item = self.node(ev, &span, depth + 1, path)?;
                    path.pop();
                    items.push(item);
                }
                let node = Node::new(mark, Kind::Seq(items));
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::MappingStart(anchor, tag) => {
                self.charge(1, path, mark)?;
                self.forced_type(tag.as_deref(), path, mark, true);
                let mut entries: Vec<Entry> = Vec::new();
                let mut seen: HashMap<String, Mark> = HashMap::new();
                loop {
                    let (kev, kspan) = self.next(path)?;
                    if matches!(kev, Event::MappingEnd) {
                        break;
                    }
                    let key_mark = mark_of(&kspan);
                    let key = match kev {
                        Event::Scalar(text, ..) => Some(text.into_owned()),
                        other => {
                            // Read the complex key to stay in step, then refuse it.
                            self.node(other, &kspan, depth + 1, path)?;
                            self.issues.push(
                                Issue::error(path.clone(), "mapping keys must be plain text")
                                    .at(key_mark),
                            );
                            None
                        }
                    };
                    let (vev, vspan) = self.next(path)?;
                    path.push(Segment::Key(key.clone().unwrap_or_default()));
                    let mut value = self.node(vev, &vspan, depth + 1, path)?;
                    value.key_mark = Some(key_mark);
                    let Some(key) = key else {
                        path.pop();
                        continue;
                    };
                    match seen.entry(key.clone()) {
                        MapEntry::Occupied(first) => {
                            self.issues.push(
                                Issue::error(path.clone(), format!("duplicate key `{key}`"))
                                    .at(key_mark)
                                    .hint(format!(
                                        "it is first set on line {}; keep one of them",
                                        first.get().line
                                    )),
                            );
                        }
                        MapEntry::Vacant(v) => {
                            v.insert(key_mark);
                            entries.push(Entry {
                                key,
                                key_mark,
                                value,
                            });
                        }
                    }
                    path.pop();
                }
                let node = Node::new(mark, Kind::Map(entries));
                self.remember(anchor, &node);
                Ok(node)
            }
            Event::Alias(id) => {
                let Some(target) = self.anchors.get(&id) else {
                    return Err(fatal(
                        path,
                        mark,
                        "this alias refers to a value that contains it, or to no anchor at all",
                    ));
                };
                let size = target.size();
                let mut node = target.clone();
                self.charge(size, path, mark)?;
                node.mark = mark;
                Ok(node)
            }
            Event::Nothing
            | Event::StreamStart
            | Event::StreamEnd
            | Event::DocumentStart(_)
            | Event::DocumentEnd
            | Event::SequenceEnd
            | Event::MappingEnd => Err(fatal(path, mark, "unexpected YAML event")),
        }
    }

    fn remember(&mut self, anchor: usize, node: &Node) {
        if anchor > 0 {
            self.anchors.insert(anchor, node.clone());
        }
    }

    /// The type a tag forces on a scalar; reports tags Fabrik does not
    /// understand (custom tags would silently change meaning elsewhere).
    fn forced_type(
        &mut self,
        tag: Option<&Tag>,
        path: &FieldPath,
        mark: Mark,
        collection: bool,
    ) -> Option<ForcedType> {
        let tag = tag?;
        if tag.handle == "!" && tag.suffix.is_empty() {
            // The non-specific tag `!`: a plain string.
            return if collection {
                None
            } else {
                Some(ForcedType::Str)
            };
        }
        if tag.is_yaml_core_schema() {
            let forced = match tag.suffix.as_str() {
                "str" => Some(Some(ForcedType::Str)),
                "int" => Some(Some(ForcedType::Int)),
                "float" => Some(Some(ForcedType::Float)),
                "bool" => Some(Some(ForcedType::Bool)),
                "null" => Some(Some(ForcedType::Null)),
                "map" | "seq" => Some(None),
                _ => None,
            };
            if let Some(f) = forced {
                return f;
            }
        }
        self.issues.push(
            Issue::error(path.clone(), format!("unsupported YAML tag `{tag}`"))
                .at(mark)
                .hint("remove the tag; specs use plain YAML values"),
        );
        None
    }
}

fn scan_error(path: &FieldPath, e: &ScanError, text: &str) -> Fatal {
    let m = e.marker();
    let mut mark = Mark::new(to_u32(m.line()), to_u32(m.col() + 1));
    let mut issue = Issue::error(path.clone(), format!("invalid YAML: {}", e.info()));
    // The scanner places a tab error where the scalar or indentation
    // before it starts; point at the tab itself.
    if e.info().contains("tab") {
        let line_start: usize = text
            .split_inclusive('\n')
            .take(m.line().saturating_sub(1))
            .map(str::len)
            .sum();
        let from = line_start
            + text[line_start..]
                .chars()
                .take(m.col())
                .map(char::len_utf8)
                .sum::<usize>();
        if let Some(off) = text.get(from..).and_then(|t| t.find('\t')) {
            let before = &text[..from + off];
            let line = before.matches('\n').count() + 1;
            let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
            mark = Mark::new(to_u32(line), to_u32(column));
        }
        issue = issue.hint("YAML indents with spaces only; replace the tab with spaces");
    }
    Box::new(issue.at(mark))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(src: &str) -> Node {
        match parse(src.as_bytes(), &Limits::default()) {
            Ok((n, issues)) => {
                assert!(issues.is_empty(), "{issues:?}");
                n
            }
            Err(e) => panic!("{e:?}"),
        }
    }

    fn errors(src: &[u8]) -> Vec<Issue> {
        match parse(src, &Limits::default()) {
            Ok((_, issues)) => issues,
            Err(e) => e,
        }
    }

    #[test]
    fn keeps_positions_of_keys_and_values() {
        let t = tree("name: blog\napp:\n  image: nginx:1.27\n  port: 80\n");
        let port = t.get("app").and_then(|a| a.get("port")).expect("port");
        assert_eq!(port.mark, Mark::new(4, 9));
        assert_eq!(port.key_mark, Some(Mark::new(4, 3)));
        assert_eq!(port.scalar().map(Scalar::typed), Some(Typed::Int(80)));
        let (n, found) = t.locate(&FieldPath::of("app.image"));
        assert!(found);
        assert_eq!(n.as_text(), Some("nginx:1.27"));
    }

    #[test]
    fn types_plain_scalars_by_the_core_schema() {
        for (s, t) in [
            ("", Typed::Null),
            ("~", Typed::Null),
            ("true", Typed::Bool(true)),
            ("yes", Typed::Str("yes")),
            ("42", Typed::Int(42)),
            ("-7", Typed::Int(-7)),
            ("0x1f", Typed::Int(31)),
            ("0o17", Typed::Int(15)),
            ("1.10", Typed::Float(1.1)),
            ("1e3", Typed::Float(1000.0)),
            (".5", Typed::Float(0.5)),
            ("1.2.3", Typed::Str("1.2.3")),
            ("30s", Typed::Str("30s")),
            (".inf", Typed::Str(".inf")),
        ] {
            assert_eq!(resolve_plain(s), t, "{s}");
        }
    }

    #[test]
    fn quoted_and_tagged_scalars_are_text() {
        let t = tree("a: '80'\nb: !!str 80\nc: |\n  80\n");
        for k in ["a", "b", "c"] {
            let s = t.get(k).and_then(Node::scalar).expect("scalar");
            assert!(matches!(s.typed(), Typed::Str(_)), "{k}");
        }
    }

    #[test]
    fn reports_duplicate_keys_where_they_repeat() {
        let e = errors(b"a: 1\nb: 2\na: 3\n");
        assert_eq!(e.len(), 1);
        assert_eq!(e[0].mark, Some(Mark::new(3, 1)));
        assert!(e[0].message.contains("duplicate key `a`"));
    }

    #[test]
    fn refuses_alias_bombs() {
        let mut src = String::from("a0: &a0 [x, x, x, x, x, x, x, x, x, x]\n");
        for i in 1..12 {
            let prev = i - 1;
            src.push_str(&format!(
                "a{i}: &a{i} [*a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}, *a{prev}]\n"
            ));
        }
        let e = errors(src.as_bytes());
        assert!(
            e.iter()
                .any(|i| i.message.contains("once aliases are expanded")),
            "{e:?}"
        );
    }

    #[test]
    fn small_aliases_are_expanded() {
        let t = tree("base: &b {port: 80}\nother: *b\n");
        assert_eq!(
            t.get("other")
                .and_then(|o| o.get("port"))
                .and_then(Node::as_text),
            Some("80")
        );
    }

    #[test]
    fn refuses_deep_nesting_without_recursing_forever() {
        let src = "[".repeat(100) + &"]".repeat(100);
        let e = errors(src.as_bytes());
        assert!(
            e.iter().any(|i| i.message.contains("nested more than 64")),
            "{e:?}"
        );
        // Far deeper input is stopped by the parser's own limit first.
        let src = "[".repeat(100_000) + &"]".repeat(100_000);
        assert!(!errors(src.as_bytes()).is_empty());
    }

    #[test]
    fn refuses_large_files_invalid_utf8_and_many_documents() {
        let big = vec![b'a'; 2 * 1024 * 1024];
        assert!(errors(&big)[0].message.contains("too large"));
        let e = errors(b"name: ok\nbad: \xff\xfe\n");
        assert!(e[0].message.contains("not valid UTF-8"));
        assert_eq!(e[0].mark, Some(Mark::new(2, 6)));
        let e = errors(b"a: 1\n---\nb: 2\n");
        assert!(e[0].message.contains("more than one YAML document"));
        let e = errors(b"# only a comment\n");
        assert!(e[0].message.contains("empty"));
    }

    #[test]
    fn reports_syntax_errors_with_position() {
        let e = errors(b"a: [1, 2\nb: 3\n");
        assert!(e[0].message.starts_with("invalid YAML"), "{e:?}");
        assert!(e[0].mark.is_some());
    }

    #[test]
    fn points_at_the_tab_itself() {
        let e = errors(b"a:\n  b: c\n\td: e\n");
        assert!(e[0].message.contains("tab"), "{e:?}");
        assert_eq!(e[0].mark, Some(Mark::new(3, 1)), "{e:?}");
    }

    #[test]
    fn refuses_custom_tags() {
        let e = errors(b"a: !Ref thing\n");
        assert!(e[0].message.contains("unsupported YAML tag"), "{e:?}");
    }
}
