"""Country resolution: Salesforce's free-text ``MailingCountry`` (or picklist code) to ISO 3166-1.

Orgs without state and country picklists hold whatever users typed: "US", "USA", "U.S.",
"United Kingdom", "UK", "Deutschland". The resolved code is the default region for parsing
national phone numbers and a fallback for the contact's time zone.
"""

from __future__ import annotations

import re
import unicodedata

import phonenumbers
import pytz

# ISO 3166-1 alpha-3 to alpha-2, five characters per country (e.g. "GBRGB"): all 249 assigned
# codes plus the user-assigned XKX/XK for Kosovo, which phonenumbers and most tools use.
_ISO3_PAIRS = (
    "ABWAW AFGAF AGOAO AIAAI ALAAX ALBAL ANDAD AREAE ARGAR ARMAM ASMAS ATAAQ ATFTF ATGAG "
    "AUSAU AUTAT AZEAZ BDIBI BELBE BENBJ BESBQ BFABF BGDBD BGRBG BHRBH BHSBS BIHBA BLMBL "
    "BLRBY BLZBZ BMUBM BOLBO BRABR BRBBB BRNBN BTNBT BVTBV BWABW CAFCF CANCA CCKCC CHECH "
    "CHLCL CHNCN CIVCI CMRCM CODCD COGCG COKCK COLCO COMKM CPVCV CRICR CUBCU CUWCW CXRCX "
    "CYMKY CYPCY CZECZ DEUDE DJIDJ DMADM DNKDK DOMDO DZADZ ECUEC EGYEG ERIER ESHEH ESPES "
    "ESTEE ETHET FINFI FJIFJ FLKFK FRAFR FROFO FSMFM GABGA GBRGB GEOGE GGYGG GHAGH GIBGI "
    "GINGN GLPGP GMBGM GNBGW GNQGQ GRCGR GRDGD GRLGL GTMGT GUFGF GUMGU GUYGY HKGHK HMDHM "
    "HNDHN HRVHR HTIHT HUNHU IDNID IMNIM INDIN IOTIO IRLIE IRNIR IRQIQ ISLIS ISRIL ITAIT "
    "JAMJM JEYJE JORJO JPNJP KAZKZ KENKE KGZKG KHMKH KIRKI KNAKN KORKR KWTKW LAOLA LBNLB "
    "LBRLR LBYLY LCALC LIELI LKALK LSOLS LTULT LUXLU LVALV MACMO MAFMF MARMA MCOMC MDAMD "
    "MDGMG MDVMV MEXMX MHLMH MKDMK MLIML MLTMT MMRMM MNEME MNGMN MNPMP MOZMZ MRTMR MSRMS "
    "MTQMQ MUSMU MWIMW MYSMY MYTYT NAMNA NCLNC NERNE NFKNF NGANG NICNI NIUNU NLDNL NORNO "
    "NPLNP NRUNR NZLNZ OMNOM PAKPK PANPA PCNPN PERPE PHLPH PLWPW PNGPG POLPL PRIPR PRKKP "
    "PRTPT PRYPY PSEPS PYFPF QATQA REURE ROURO RUSRU RWARW SAUSA SDNSD SENSN SGPSG SGSGS "
    "SHNSH SJMSJ SLBSB SLESL SLVSV SMRSM SOMSO SPMPM SRBRS SSDSS STPST SURSR SVKSK SVNSI "
    "SWESE SWZSZ SXMSX SYCSC SYRSY TCATC TCDTD TGOTG THATH TJKTJ TKLTK TKMTM TLSTL TONTO "
    "TTOTT TUNTN TURTR TUVTV TWNTW TZATZ UGAUG UKRUA UMIUM URYUY USAUS UZBUZ VATVA VCTVC "
    "VENVE VGBVG VIRVI VNMVN VUTVU WLFWF WSMWS YEMYE ZAFZA ZMBZM ZWEZW XKXXK"
)

# Spellings that neither ISO codes nor pytz's English names cover: abbreviations, official and
# ISO-style names, former names and common endonyms. Checked first, so they also settle names
# that would otherwise be ambiguous ("Korea", "Congo", "Samoa").
_ALIASES: dict[str, tuple[str, ...]] = {
    "US": ("USA", "U.S.", "U.S.A.", "United States of America", "America"),
    "GB": (
        "UK",
        "U.K.",
        "United Kingdom",
        "Great Britain",
        "England",
        "Scotland",
        "Wales",
        "Northern Ireland",
        "United Kingdom of Great Britain and Northern Ireland",
    ),
    "DE": ("Deutschland", "Allemagne", "Alemania", "Germania", "Federal Republic of Germany"),
    "AE": ("UAE", "U.A.E.", "Emirates"),
    "KR": ("Korea", "South Korea", "Republic of Korea", "Korea, Republic of"),
    "KP": ("North Korea", "DPRK", "Korea, Democratic People's Republic of"),
    "CD": (
        "DRC",
        "DR Congo",
        "Democratic Republic of the Congo",
        "Congo-Kinshasa",
        "Congo, The Democratic Republic of the",
    ),
    "CG": ("Congo", "Republic of the Congo", "Congo-Brazzaville"),
    "WS": ("Samoa",),
    "AS": ("American Samoa",),
    "VG": ("British Virgin Islands",),
    "VI": ("US Virgin Islands", "U.S. Virgin Islands", "Virgin Islands, U.S."),
    "RU": ("Russian Federation",),
    "CZ": ("Czechia",),
    "NL": ("Holland", "Nederland"),
    "CI": ("Ivory Coast", "Cote d'Ivoire"),
    "MM": ("Burma",),
    "SZ": ("Swaziland", "Eswatini"),
    "MK": ("Macedonia",),
    "CV": ("Cabo Verde",),
    "TL": ("Timor-Leste",),
    "VA": ("Vatican", "Holy See"),
    "TR": ("Türkiye",),
    "MO": ("Macao",),
    "HK": ("Hong Kong SAR",),
    "CN": ("PRC", "People's Republic of China", "Mainland China"),
    "VN": ("Viet Nam",),
    "LA": ("Lao People's Democratic Republic", "Lao PDR"),
    "SY": ("Syrian Arab Republic",),
    "IR": ("Iran, Islamic Republic of",),
    "VE": ("Venezuela, Bolivarian Republic of",),
    "BO": ("Bolivia, Plurinational State of",),
    "TZ": ("Tanzania, United Republic of",),
    "MD": ("Moldova, Republic of",),
    "BN": ("Brunei Darussalam",),
    "PS": ("Palestine, State of",),
    "FM": ("Micronesia, Federated States of",),
    "BQ": ("Caribbean Netherlands", "Bonaire, Sint Eustatius and Saba"),
    "SA": ("KSA",),
    "XK": ("Kosovo",),
    "ES": ("España",),
    "IT": ("Italia",),
    "BR": ("Brasil",),
    "CH": ("Schweiz", "Suisse", "Svizzera"),
    "AT": ("Österreich",),
    "BE": ("Belgique", "België"),
    "SE": ("Sverige",),
    "NO": ("Norge",),
    "DK": ("Danmark",),
    "FI": ("Suomi",),
    "PL": ("Polska",),
    "IE": ("Éire", "Republic of Ireland"),
    "JP": ("Nippon", "Nihon"),
}

_PARENTHESIZED = re.compile(r"\([^)]*\)")
# No country name is anywhere near this long; longer input is junk and not worth normalizing.
_MAX_INPUT = 100


def _key(text: str) -> str:
    """Case-, accent-, space- and punctuation-insensitive form: "U.S.A." and "usa" agree."""
    decomposed = unicodedata.normalize("NFKD", text.replace("&", " and ").casefold())
    # Combining accents left by NFKD are not alphanumeric, so they go with the punctuation.
    return "".join(char for char in decomposed if char.isalnum())


def _build_names() -> dict[str, str]:
    """Name key -> ISO-2 from pytz's English names ("Korea (South)", "St Lucia")."""
    names: dict[str, str] = {}
    ambiguous: set[str] = set()
    for code, name in pytz.country_names.items():
        variants = {name, _PARENTHESIZED.sub(" ", name)}
        variants |= {re.sub(r"^St\b\.?", "Saint", variant) for variant in variants}
        for variant in variants:
            key = _key(variant)
            if names.get(key, code) != code:
                ambiguous.add(key)  # "Korea" from both Koreas: only an alias may decide
            names[key] = code
    for key in ambiguous:
        del names[key]
    for code, aliases in _ALIASES.items():
        names.update((_key(alias), code) for alias in aliases)
    return names


_ISO2 = frozenset(pytz.country_names) | (frozenset(phonenumbers.SUPPORTED_REGIONS) - {"001"})
_ISO3 = {pair[:3]: pair[3:] for pair in _ISO3_PAIRS.split()}
_NAMES = _build_names()


def resolve_country(value: str | None) -> str | None:
    """The ISO 3166-1 alpha-2 code (upper case) a country field means, or None.

    Accepts ISO-2 and ISO-3 codes, English names and the common aliases above, ignoring case,
    accents, spaces, punctuation, a leading "The" and a parenthesized part ("Falkland Islands
    (Malvinas)"). Never raises.
    """
    if not isinstance(value, str) or len(value) > _MAX_INPUT:
        return None
    for text in (value, _PARENTHESIZED.sub(" ", value)):
        key = _key(text)
        code = _lookup(key) or (_lookup(key[3:]) if key.startswith("the") else None)
        if code is not None:
            return code
    return None


def _lookup(key: str) -> str | None:
    if not key:
        return None
    # Aliases and names first: "UK" is not an ISO code but must not fall through to nothing.
    if key in _NAMES:
        return _NAMES[key]
    upper = key.upper()
    if len(key) == 2 and upper in _ISO2:
        return upper
    if len(key) == 3:
        return _ISO3.get(upper)
    return None


def country_timezone(code: str | None) -> str | None:
    """The IANA zone of a country that has exactly one (GB, FR, JP), else None (US, BR, AU)."""
    if code is None:
        return None
    try:
        zones = pytz.country_timezones[code]
    except KeyError:
        return None
    return zones[0] if len(zones) == 1 else None
