//! QR codes as inline SVG: markup in the page, so the CSP needs no `data:` images and the page
//! no script.

use qrcode::QrCode;
use qrcode::render::svg;

/// `text` as an SVG element (no XML declaration, ready to sit inside HTML); empty if the text
/// is too long for a QR code.
pub fn svg(text: &str) -> String {
    let Ok(code) = QrCode::new(text.as_bytes()) else {
        return String::new();
    };
    let image = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .build();
    match image.find("<svg") {
        Some(start) => image[start..].to_owned(),
        None => image,
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_svg_element_without_xml_declaration() {
        let svg = super::svg("otpauth://totp/doorman:alice?secret=ABC&issuer=doorman");
        assert!(svg.starts_with("<svg"), "{}", &svg[..40]);
        assert!(svg.contains("<path"));
    }
}
