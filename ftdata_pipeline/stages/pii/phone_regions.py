"""Default regions whose national phone-number layouts are checked (one list, used by the
config default and the recognizer)."""

# ISO 3166 codes: EU and EFTA, UK, North and Latin America, India, East and South-East Asia,
# Oceania, plus a few large markets. Numbers written with a '+' country code are found whatever
# the list; the list only decides which *national* layouts (no country code) are recognized.
DEFAULT_PHONE_REGIONS = (
    "US", "CA", "GB", "IE", "DE", "AT", "CH", "FR", "BE", "NL", "LU", "ES", "PT", "IT", "DK",
    "SE", "NO", "FI", "IS", "PL", "CZ", "SK", "HU", "RO", "BG", "GR", "HR", "SI", "EE", "LV",
    "LT", "CY", "MT", "MX", "BR", "AR", "CL", "CO", "PE", "IN", "CN", "JP", "KR", "TW", "HK",
    "SG", "MY", "PH", "TH", "VN", "ID", "AU", "NZ", "ZA", "IL", "TR",
)
