//! Reading values off OTA elements, each failure an OTA error naming the value's path.

use super::codes::OtaError;
use super::xml::Element;

/// The one `name` child of `parent`; none or several is an error naming `parent_path`.
pub fn only<'a>(
    parent: &'a Element,
    name: &'a str,
    parent_path: &str,
) -> Result<&'a Element, OtaError> {
    let mut all = parent.children_named(name);
    let first = all
        .next()
        .ok_or_else(|| OtaError::missing(&format!("{parent_path}/{name}")))?;
    if all.next().is_some() {
        return Err(OtaError::invalid(
            &format!("{parent_path}/{name}"),
            format!("one {name} per message is accepted; send each in a message of its own"),
        ));
    }
    Ok(first)
}

/// The attribute `name` of `element`, present and not blank.
pub fn required(element: &Element, name: &str, path: &str) -> Result<String, OtaError> {
    match element.attribute(name).map(str::trim) {
        Some(value) if !value.is_empty() => Ok(value.to_owned()),
        _ => Err(OtaError::missing(&format!("{path}/@{name}"))),
    }
}

pub fn integer(value: &str, path: &str) -> Result<i64, OtaError> {
    value
        .trim()
        .parse::<i64>()
        .map_err(|_| OtaError::invalid(path, format!("{value:?} is not a whole number")))
}

/// A `TimeSpan` bound as a date: OTA allows a date-time there; its date part is the night.
pub fn date(span: &Element, name: &str, path: &str) -> Result<String, OtaError> {
    let value = required(span, name, path)?;
    Ok(value.split('T').next().unwrap_or_default().to_owned())
}
