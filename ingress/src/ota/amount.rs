//! An OTA `Total` (`AmountAfterTax`, `CurrencyCode`, `DecimalPlaces`) as integer minor
//! units of its currency, the only form of money the pipeline carries.
//!
//! OTA amounts are decimals, and `DecimalPlaces` gives the currency's minor unit (ISO 4217).
//! Partners write the same total two ways: `240.00` (a decimal point: the value itself) or
//! `24000` with `DecimalPlaces="2"` (no point: the decimals are implied, as OTA's integer
//! amounts are). An amount with neither is in whole units. Anything that would lose a
//! fraction of a minor unit, or disagrees with the currency's own minor unit, is refused
//! rather than rounded.

/// Why a total cannot be converted.
#[derive(Debug, PartialEq, Eq, thiserror::Error)]
pub enum AmountError {
    #[error("{0:?} is not a decimal amount")]
    NotAnAmount(String),
    #[error("{0:?} is not an ISO 4217 currency code")]
    UnknownCurrency(String),
    #[error("DecimalPlaces {given} disagrees with {currency}'s minor unit ({minor})")]
    DecimalPlaces {
        given: u32,
        currency: String,
        minor: u32,
    },
    #[error("{amount:?} has more decimals than {currency}'s minor unit ({minor})")]
    TooPrecise {
        amount: String,
        currency: String,
        minor: u32,
    },
    #[error("{0:?} is too large")]
    TooLarge(String),
}

/// `amount` of `currency` in minor units; `decimal_places` as the message gave it.
pub fn minor_units(
    amount: &str,
    currency: &str,
    decimal_places: Option<&str>,
) -> Result<i64, AmountError> {
    let minor = iso_currency::Currency::from_code(currency)
        .map(|c| u32::from(c.exponent().unwrap_or(0)))
        .ok_or_else(|| AmountError::UnknownCurrency(currency.to_owned()))?;
    let given = match decimal_places {
        Some(places) => Some(
            places
                .trim()
                .parse::<u32>()
                .map_err(|_| AmountError::NotAnAmount(places.to_owned()))?,
        ),
        None => None,
    };
    if let Some(given) = given.filter(|given| *given != minor) {
        return Err(AmountError::DecimalPlaces {
            given,
            currency: currency.to_owned(),
            minor,
        });
    }
    let trimmed = amount.trim();
    let (whole, fraction) = match trimmed.split_once('.') {
        Some((whole, fraction)) => (whole, fraction),
        // Implied decimals: the digits are already minor units.
        None if given.is_some() => return digits(trimmed, amount),
        None => (trimmed, ""),
    };
    if !fraction.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotAnAmount(amount.to_owned()));
    }
    let fraction = fraction.trim_end_matches('0');
    if fraction.len() > minor as usize {
        return Err(AmountError::TooPrecise {
            amount: amount.to_owned(),
            currency: currency.to_owned(),
            minor,
        });
    }
    let whole = digits(whole, amount)?;
    let padded = format!("{fraction:0<width$}", width = minor as usize);
    let fraction = if padded.is_empty() {
        0
    } else {
        digits(&padded, amount)?
    };
    whole
        .checked_mul(10_i64.pow(minor))
        .and_then(|w| w.checked_add(fraction))
        .ok_or_else(|| AmountError::TooLarge(amount.to_owned()))
}

/// A run of ASCII digits as a number (no sign: a total is never negative).
fn digits(text: &str, amount: &str) -> Result<i64, AmountError> {
    if text.is_empty() || !text.bytes().all(|b| b.is_ascii_digit()) {
        return Err(AmountError::NotAnAmount(amount.to_owned()));
    }
    text.parse()
        .map_err(|_| AmountError::TooLarge(amount.to_owned()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimals_implied_decimals_and_whole_units_give_the_same_minor_units() {
        assert_eq!(minor_units("240.00", "EUR", None), Ok(24_000));
        assert_eq!(minor_units("240.5", "EUR", Some("2")), Ok(24_050));
        assert_eq!(minor_units("24000", "EUR", Some("2")), Ok(24_000));
        assert_eq!(minor_units("240", "EUR", None), Ok(24_000));
        assert_eq!(minor_units(" 240.00 ", "EUR", None), Ok(24_000));
        assert_eq!(minor_units("15000", "JPY", None), Ok(15_000));
        assert_eq!(minor_units("15000", "JPY", Some("0")), Ok(15_000));
        assert_eq!(minor_units("1.234", "KWD", None), Ok(1_234));
        assert_eq!(minor_units("0.10", "EUR", None), Ok(10));
    }

    #[test]
    fn what_would_be_rounded_or_guessed_is_refused() {
        assert!(matches!(
            minor_units("240.005", "EUR", None),
            Err(AmountError::TooPrecise { .. })
        ));
        assert!(matches!(
            minor_units("240", "EUR", Some("3")),
            Err(AmountError::DecimalPlaces {
                given: 3,
                minor: 2,
                ..
            })
        ));
        assert_eq!(
            minor_units("240", "XYZ", None),
            Err(AmountError::UnknownCurrency("XYZ".into()))
        );
        for bad in ["", "-5", "1e3", "2,40", "12.3.4", ".", "abc"] {
            assert!(
                matches!(
                    minor_units(bad, "EUR", None),
                    Err(AmountError::NotAnAmount(_))
                ),
                "{bad:?}"
            );
        }
        assert!(matches!(
            minor_units("99999999999999999999", "EUR", None),
            Err(AmountError::TooLarge(_))
        ));
    }
}
