use super::*;

const OTA: &str = "http://www.opentravel.org/OTA/2003/05";

fn read(xml: &str) -> Result<Element, XmlError> {
    parse(xml.as_bytes(), Limits::default())
}

#[test]
fn elements_attributes_and_text_are_read_with_their_namespace() {
    let root = read(&format!(
        r#"<?xml version="1.0" encoding="UTF-8"?>
        <!-- a partner's comment -->
        <OTA_HotelResNotifRQ xmlns="{OTA}" Version="1.0" EchoToken="e&amp;1">
          <HotelReservations>
            <HotelReservation><UniqueID Type="14" ID="R-1"/>
              <Comment>Late &lt;arrival&gt; &#233;t&#xE9; <![CDATA[<raw>]]></Comment>
            </HotelReservation>
          </HotelReservations>
        </OTA_HotelResNotifRQ>"#
    ))
    .unwrap();
    assert_eq!(root.name, "OTA_HotelResNotifRQ");
    assert_eq!(root.namespace.as_deref(), Some(OTA));
    assert_eq!(root.attribute("EchoToken"), Some("e&1"));
    assert_eq!(
        root.attribute("xmlns"),
        None,
        "namespace declarations are not attributes"
    );
    let reservation = root
        .find(&["HotelReservations", "HotelReservation"])
        .unwrap();
    assert_eq!(reservation.namespace.as_deref(), Some(OTA));
    assert_eq!(
        reservation.child("UniqueID").unwrap().attribute("ID"),
        Some("R-1")
    );
    assert_eq!(
        reservation.child("Comment").unwrap().text,
        "Late <arrival> été <raw>"
    );
}

#[test]
fn prefixed_elements_resolve_to_their_namespace() {
    let root = read(
        r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/">
             <s:Body><m:Ping xmlns:m="urn:m" At="1"/></s:Body></s:Envelope>"#,
    )
    .unwrap();
    assert_eq!(root.name, "Envelope");
    assert_eq!(
        root.namespace.as_deref(),
        Some("http://schemas.xmlsoap.org/soap/envelope/")
    );
    let ping = root.find(&["Body", "Ping"]).unwrap();
    assert_eq!(ping.namespace.as_deref(), Some("urn:m"));
    assert_eq!(ping.attribute("At"), Some("1"));
    assert_eq!(read("<a:b/>"), Err(XmlError::UnboundPrefix("a".into())));
}

#[test]
fn the_billion_laughs_is_refused_at_its_doctype() {
    let laughs = r#"<?xml version="1.0"?>
        <!DOCTYPE lolz [
          <!ENTITY lol "lol">
          <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
          <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
        ]>
        <lolz>&lol3;</lolz>"#;
    assert_eq!(read(laughs), Err(XmlError::DocumentType));
}

#[test]
fn external_entities_are_refused() {
    let xxe = r#"<?xml version="1.0"?>
        <!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>"#;
    assert_eq!(read(xxe), Err(XmlError::DocumentType));
    // Without a DTD an entity reference cannot be defined at all.
    assert_eq!(
        read("<r>&xxe;</r>"),
        Err(XmlError::UnknownEntity("xxe".into()))
    );
    assert_eq!(
        read(r#"<r a="&xxe;"/>"#),
        Err(XmlError::UnknownEntity("xxe".into()))
    );
}

#[test]
fn deep_nesting_stops_at_the_depth_limit() {
    let depth = 100_000;
    let xml = format!("{}{}", "<a>".repeat(depth), "</a>".repeat(depth));
    assert_eq!(read(&xml), Err(XmlError::TooDeep(32)));
    let fits = format!("{}{}", "<a>".repeat(32), "</a>".repeat(32));
    assert!(read(&fits).is_ok());
}

#[test]
fn huge_values_and_element_floods_are_refused() {
    let huge = format!(r#"<r a="{}"/>"#, "x".repeat(1 << 20));
    assert_eq!(read(&huge), Err(XmlError::ValueTooLong("r".into(), 4_096)));
    let text = format!("<r>{}</r>", "y".repeat(5_000));
    assert_eq!(read(&text), Err(XmlError::ValueTooLong("r".into(), 4_096)));
    let flood = format!("<r>{}</r>", "<e/>".repeat(6_000));
    assert_eq!(read(&flood), Err(XmlError::TooManyElements(5_000)));
}

#[test]
fn what_is_not_one_well_formed_document_is_malformed() {
    for body in [
        "<a><b></a>",
        "<a>",
        "<a/><b/>",
        "just text",
        "<a x=1/>",
        "<a>\u{0}</a>",
        "<a>&#1;</a>",
        "<a b=\"&#0;\"/>",
    ] {
        assert!(
            matches!(read(body), Err(XmlError::Malformed(_))),
            "{body:?}: {:?}",
            read(body)
        );
    }
    assert_eq!(read(""), Err(XmlError::Empty));
    assert_eq!(read("<!-- nothing -->"), Err(XmlError::Empty));
    assert!(matches!(
        parse(b"<a>\xff\xfe</a>", Limits::default()),
        Err(XmlError::Malformed(_))
    ));
}
