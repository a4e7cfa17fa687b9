//! A request body as a small, bounded, namespace-resolved element tree.
//!
//! OTA messages are a few kilobytes with a fixed shape, so the body is read once into a
//! tree (quick-xml does the parsing) and the messages are read off the tree by name. What
//! makes XML dangerous to accept is refused while reading, before anything is built from
//! it: a document type declaration (the only way to define entities, hence the billion
//! laughs and external entities, XXE), any entity but XML's five predefined ones and
//! character references, nesting deeper than [`Limits::depth`], more elements than
//! [`Limits::elements`], and attribute values or text longer than [`Limits::value_bytes`].
//! The body itself is already bounded by the ingress's body limit, so memory is too.

use std::borrow::Cow;

use quick_xml::events::{BytesRef, BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, XmlVersion};

/// Bounds on what a body may build.
#[derive(Clone, Copy, Debug)]
pub struct Limits {
    /// Deepest nesting of elements (the SOAP envelope and an OTA message need about 12).
    pub depth: usize,
    /// Elements in the whole document.
    pub elements: usize,
    /// Longest attribute value or element text, in bytes.
    pub value_bytes: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            depth: 32,
            elements: 5_000,
            value_bytes: 4_096,
        }
    }
}

/// One element: its namespace, local name, attributes (by local name; the OTA messages
/// use unprefixed attributes), text and children, in document order.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Element {
    pub namespace: Option<String>,
    pub name: String,
    pub attributes: Vec<(String, String)>,
    pub text: String,
    pub children: Vec<Element>,
}

impl Element {
    /// The value of the attribute `name`, if present.
    pub fn attribute(&self, name: &str) -> Option<&str> {
        self.attributes
            .iter()
            .find(|(key, _)| key == name)
            .map(|(_, value)| value.as_str())
    }

    /// The first child named `name`.
    pub fn child(&self, name: &str) -> Option<&Element> {
        self.children.iter().find(|child| child.name == name)
    }

    /// Every child named `name`, in order.
    pub fn children_named<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a Element> {
        self.children.iter().filter(move |child| child.name == name)
    }

    /// The first element down `path`, one name per level.
    pub fn find(&self, path: &[&str]) -> Option<&Element> {
        path.iter()
            .try_fold(self, |element, name| element.child(name))
    }
}

/// Why a body is not a document we accept.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum XmlError {
    #[error("the body is not well-formed XML: {0}")]
    Malformed(String),
    #[error("document type declarations are not accepted (no DTDs, no entity definitions)")]
    DocumentType,
    #[error("the entity &{0}; is not one of XML's predefined entities")]
    UnknownEntity(String),
    #[error("elements are nested deeper than {0} levels")]
    TooDeep(usize),
    #[error("the document has more than {0} elements")]
    TooManyElements(usize),
    #[error("a value of <{0}> is longer than {1} bytes")]
    ValueTooLong(String, usize),
    #[error("the prefix {0:?} is not bound to a namespace")]
    UnboundPrefix(String),
    #[error("the body holds no element")]
    Empty,
}

/// Reads `body` into its root element, within `limits`.
pub fn parse(body: &[u8], limits: Limits) -> Result<Element, XmlError> {
    // Text is kept whole (an entity reference splits it into several events), with the
    // whitespace that only indents elements left out: see `append_text`.
    let mut reader = NsReader::from_reader(body);
    let mut open: Vec<Element> = Vec::new();
    let mut elements = 0usize;
    let mut root = None;
    loop {
        let (namespace, event) = reader
            .read_resolved_event()
            .map_err(|e| XmlError::Malformed(e.to_string()))?;
        let namespace = match namespace {
            ResolveResult::Bound(ns) => Some(ns.as_ref().to_owned()),
            ResolveResult::Unbound => None,
            ResolveResult::Unknown(prefix) => {
                return Err(XmlError::UnboundPrefix(prefix.to_string()))
            }
        };
        match event {
            Event::Start(_) | Event::Empty(_) if root.is_some() => {
                return Err(XmlError::Malformed("content after the root element".into()));
            }
            Event::Start(start) => {
                elements += 1;
                within(elements, open.len(), limits)?;
                open.push(element(namespace, &start, limits)?);
            }
            Event::Empty(start) => {
                elements += 1;
                within(elements, open.len(), limits)?;
                let closed = element(namespace, &start, limits)?;
                close(&mut open, &mut root, closed);
            }
            Event::End(_) => {
                // quick-xml checks that end tags match their start tags.
                let mut closed = open
                    .pop()
                    .ok_or_else(|| XmlError::Malformed("unexpected end tag".into()))?;
                closed.text.truncate(closed.text.trim_end().len());
                close(&mut open, &mut root, closed);
            }
            Event::Text(text) => append_text(&mut open, &text.xml10_content(), limits)?,
            Event::CData(data) => append_text(&mut open, &data.xml10_content(), limits)?,
            Event::GeneralRef(reference) => {
                let resolved = entity(&reference)?;
                append_text(&mut open, &resolved, limits)?;
            }
            Event::DocType(_) => return Err(XmlError::DocumentType),
            // The declaration, comments and processing instructions carry nothing we read.
            Event::Decl(_) | Event::Comment(_) | Event::PI(_) => {}
            Event::Eof => break,
        }
    }
    if !open.is_empty() {
        return Err(XmlError::Malformed(
            "the document ends inside an element".into(),
        ));
    }
    root.ok_or(XmlError::Empty)
}

/// Whether one more element, the `elements`th, opened inside `depth` open ones, is allowed.
fn within(elements: usize, depth: usize, limits: Limits) -> Result<(), XmlError> {
    if elements > limits.elements {
        return Err(XmlError::TooManyElements(limits.elements));
    }
    if depth >= limits.depth {
        return Err(XmlError::TooDeep(limits.depth));
    }
    Ok(())
}

/// The element opened by `start`, with its attributes read and unescaped.
fn element(
    namespace: Option<String>,
    start: &BytesStart<'_>,
    limits: Limits,
) -> Result<Element, XmlError> {
    let name = start.local_name().as_ref().to_owned();
    let mut attributes = Vec::new();
    for attribute in start.attributes() {
        let attribute = attribute.map_err(|e| XmlError::Malformed(e.to_string()))?;
        let key = attribute.key;
        // Namespace declarations are the reader's business, not the message's.
        if key.as_namespace_binding().is_some() {
            continue;
        }
        // OTA messages are XML 1.0; a 1.1 declaration changes nothing we read.
        let value = attribute
            .normalized_value(XmlVersion::Implicit1_0)
            .map_err(|e| match e {
                quick_xml::Error::Escape(quick_xml::escape::EscapeError::UnrecognizedEntity(
                    _,
                    name,
                )) => XmlError::UnknownEntity(name),
                other => XmlError::Malformed(other.to_string()),
            })?;
        if value.len() > limits.value_bytes {
            return Err(XmlError::ValueTooLong(name, limits.value_bytes));
        }
        allowed_characters(&value)?;
        let local = key.local_name().as_ref().to_owned();
        attributes.push((local, value.into_owned()));
    }
    Ok(Element {
        namespace,
        name,
        attributes,
        ..Element::default()
    })
}

/// The text a reference stands for: a character reference, or one of the five entities
/// XML predefines. Any other entity would need a DTD, which is refused.
fn entity(reference: &BytesRef<'_>) -> Result<Cow<'static, str>, XmlError> {
    if let Some(character) = reference
        .resolve_char_ref()
        .map_err(|e| XmlError::Malformed(e.to_string()))?
    {
        return Ok(Cow::Owned(character.to_string()));
    }
    let name = reference.xml10_content();
    quick_xml::escape::resolve_predefined_entity(&name)
        .map(Cow::Borrowed)
        .ok_or_else(|| XmlError::UnknownEntity(name.into_owned()))
}

/// Adds `text` to the innermost open element. Whitespace before an element's first other
/// character is indentation and is left out (so it counts against no limit), as is
/// whitespace outside the root; the end of the text is trimmed when the element closes.
fn append_text(open: &mut [Element], text: &str, limits: Limits) -> Result<(), XmlError> {
    let blank = text.trim().is_empty();
    let Some(current) = open.last_mut() else {
        return if blank {
            Ok(())
        } else {
            Err(XmlError::Malformed("text outside the root element".into()))
        };
    };
    if blank && current.text.is_empty() {
        return Ok(());
    }
    allowed_characters(text)?;
    let text = if current.text.is_empty() {
        text.trim_start()
    } else {
        text
    };
    if current.text.len() + text.len() > limits.value_bytes {
        return Err(XmlError::ValueTooLong(
            current.name.clone(),
            limits.value_bytes,
        ));
    }
    current.text.push_str(text);
    Ok(())
}

/// XML 1.0 allows no control character but tab, line feed and carriage return, not even
/// as a character reference; quick-xml leaves that check to its user.
fn allowed_characters(text: &str) -> Result<(), XmlError> {
    match text
        .chars()
        .find(|c| (*c as u32) < 0x20 && !matches!(c, '\t' | '\n' | '\r'))
    {
        Some(c) => Err(XmlError::Malformed(format!(
            "the character U+{:04X} is not allowed in XML",
            c as u32
        ))),
        None => Ok(()),
    }
}

fn close(open: &mut [Element], root: &mut Option<Element>, closed: Element) {
    match open.last_mut() {
        Some(parent) => parent.children.push(closed),
        None => *root = Some(closed),
    }
}

// By path, so it resolves the same when the fuzz target compiles this file by path.
#[cfg(test)]
#[path = "xml/tests.rs"]
mod tests;
