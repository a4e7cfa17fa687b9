//! The SOAP 1.1 envelope channel managers wrap OTA messages in, and the WS-Security
//! `UsernameToken` that carries their credentials.
//!
//! A body is either a bare OTA message or a SOAP 1.1 `Envelope` whose `Body` holds exactly
//! one. The `Security` header's `UsernameToken` gives a user name and a password in clear
//! text (`#PasswordText`, the only type channel managers use; a digest would need the
//! secret itself, which the partners file does not keep). The answer goes back in the form
//! the request came in.

use super::xml::Element;

pub const SOAP_NAMESPACE: &str = "http://schemas.xmlsoap.org/soap/envelope/";
pub const WSSE_NAMESPACE: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd";
/// The password type of a `UsernameToken` that carries the password itself.
pub const PASSWORD_TEXT: &str =
    "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText";

/// A `UsernameToken`'s credentials.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct UsernameToken {
    pub username: String,
    pub password: String,
}

/// An OTA message as it arrived.
#[derive(Debug, PartialEq, Eq)]
pub struct Unwrapped<'a> {
    pub message: &'a Element,
    /// Whether it came in a SOAP envelope (and its answer goes back in one).
    pub soap: bool,
    pub token: Option<UsernameToken>,
}

/// Why an envelope is not one we take.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum SoapError {
    #[error("the SOAP Body must hold exactly one element, the OTA message; it holds {0}")]
    BodyNotOneMessage(usize),
    #[error("the SOAP envelope has no Body")]
    NoBody,
    #[error("the UsernameToken has no {0}")]
    TokenIncomplete(&'static str),
    #[error("the UsernameToken's password type {0:?} is not #PasswordText")]
    PasswordType(String),
    #[error("only SOAP 1.1 envelopes ({SOAP_NAMESPACE}) are taken, not {0:?}")]
    OtherSoapVersion(String),
}

/// The OTA message of `root`: `root` itself, or the one in its SOAP body.
pub fn unwrap(root: &Element) -> Result<Unwrapped<'_>, SoapError> {
    if root.name != "Envelope" {
        return Ok(Unwrapped {
            message: root,
            soap: false,
            token: None,
        });
    }
    match root.namespace.as_deref() {
        Some(SOAP_NAMESPACE) => {}
        // Any other namespace: not SOAP 1.1 (SOAP 1.2's is the one met in practice).
        other => {
            return Err(SoapError::OtherSoapVersion(
                other.unwrap_or_default().to_owned(),
            ))
        }
    }
    let body = root
        .children
        .iter()
        .find(|child| child.name == "Body" && child.namespace.as_deref() == Some(SOAP_NAMESPACE))
        .ok_or(SoapError::NoBody)?;
    let [message] = body.children.as_slice() else {
        return Err(SoapError::BodyNotOneMessage(body.children.len()));
    };
    let header = root
        .children
        .iter()
        .find(|child| child.name == "Header" && child.namespace.as_deref() == Some(SOAP_NAMESPACE));
    Ok(Unwrapped {
        message,
        soap: true,
        token: header.map(username_token).transpose()?.flatten(),
    })
}

/// The `Security/UsernameToken` of a SOAP header, if it has one.
fn username_token(header: &Element) -> Result<Option<UsernameToken>, SoapError> {
    let in_wsse = |e: &&Element| e.namespace.as_deref() == Some(WSSE_NAMESPACE);
    let Some(token) = header
        .children
        .iter()
        .filter(in_wsse)
        .find(|e| e.name == "Security")
        .and_then(|security| {
            security
                .children
                .iter()
                .filter(in_wsse)
                .find(|e| e.name == "UsernameToken")
        })
    else {
        return Ok(None);
    };
    let part = |name| {
        token
            .children
            .iter()
            .filter(in_wsse)
            .find(|e| e.name == name)
    };
    let username = part("Username").ok_or(SoapError::TokenIncomplete("Username"))?;
    let password = part("Password").ok_or(SoapError::TokenIncomplete("Password"))?;
    // No Type means text, as the token profile says; channel managers are known to
    // write the URI in other cases.
    if let Some(kind) = password.attribute("Type") {
        if !kind.eq_ignore_ascii_case(PASSWORD_TEXT) {
            return Err(SoapError::PasswordType(kind.to_owned()));
        }
    }
    Ok(Some(UsernameToken {
        username: username.text.clone(),
        password: password.text.clone(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ota::xml::{parse, Limits};

    fn envelope(header: &str, body: &str) -> String {
        format!(
            r#"<soap:Envelope xmlns:soap="{SOAP_NAMESPACE}"><soap:Header>{header}</soap:Header><soap:Body>{body}</soap:Body></soap:Envelope>"#
        )
    }

    fn security(password_type: &str) -> String {
        format!(
            r#"<wsse:Security soap:mustUnderstand="1" xmlns:wsse="{WSSE_NAMESPACE}"><wsse:UsernameToken>
                 <wsse:Username>demo-ota-1</wsse:Username>
                 <wsse:Password{password_type}>s3cret &amp; more</wsse:Password>
               </wsse:UsernameToken></wsse:Security>"#
        )
    }

    const MESSAGE: &str =
        r#"<OTA_CancelRQ xmlns="http://www.opentravel.org/OTA/2003/05" Version="1.0"/>"#;

    fn unwrapped(xml: &str) -> Result<(String, bool, Option<UsernameToken>), SoapError> {
        let root = parse(xml.as_bytes(), Limits::default()).unwrap();
        unwrap(&root).map(|u| (u.message.name.clone(), u.soap, u.token))
    }

    #[test]
    fn a_bare_message_is_its_own_message() {
        assert_eq!(unwrapped(MESSAGE), Ok(("OTA_CancelRQ".into(), false, None)));
    }

    #[test]
    fn the_envelope_yields_its_message_and_the_username_token() {
        let token = Some(UsernameToken {
            username: "demo-ota-1".into(),
            password: "s3cret & more".into(),
        });
        let typed = format!(r#" Type="{PASSWORD_TEXT}""#);
        assert_eq!(
            unwrapped(&envelope(&security(&typed), MESSAGE)),
            Ok(("OTA_CancelRQ".into(), true, token.clone()))
        );
        // Lower case, as one channel manager writes it; no type at all means text.
        let lower = format!(r#" Type="{}""#, PASSWORD_TEXT.to_lowercase());
        assert_eq!(
            unwrapped(&envelope(&security(&lower), MESSAGE)).unwrap().2,
            token
        );
        assert_eq!(
            unwrapped(&envelope(&security(""), MESSAGE)).unwrap().2,
            token
        );
        assert_eq!(unwrapped(&envelope("", MESSAGE)).unwrap().2, None);
    }

    #[test]
    fn envelopes_that_are_not_one_soap_1_1_message_are_refused() {
        let digest = r#" Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordDigest""#;
        assert!(matches!(
            unwrapped(&envelope(&security(digest), MESSAGE)),
            Err(SoapError::PasswordType(_))
        ));
        assert_eq!(
            unwrapped(&envelope("", &format!("{MESSAGE}{MESSAGE}"))),
            Err(SoapError::BodyNotOneMessage(2))
        );
        assert_eq!(
            unwrapped(&envelope("", "")),
            Err(SoapError::BodyNotOneMessage(0))
        );
        let soap12 = r#"<e:Envelope xmlns:e="http://www.w3.org/2003/05/soap-envelope"><e:Body/></e:Envelope>"#;
        assert!(matches!(
            unwrapped(soap12),
            Err(SoapError::OtherSoapVersion(_))
        ));
        let no_body = format!(r#"<soap:Envelope xmlns:soap="{SOAP_NAMESPACE}"/>"#);
        assert_eq!(unwrapped(&no_body), Err(SoapError::NoBody));
    }
}
