"""Word lists for the semantic-hit guard: words that change an answer, words that tell a language.

Contract: plain immutable data, all keys casefolded. ``TERMS`` maps a word to a
canonical term (synonyms share one: "km" and "kilometres" are both ``km``); two prompts
whose terms differ get different answers, whatever their embeddings say. Several
polar pairs list only their marked side ("off", "out", "down", "unsafe", "bad"), because
the unmarked side ("on", "in", "up", "safe", "good") is too common a word to count.
``NUMBER_WORDS``, ``SCALE_WORDS`` and ``ORDINAL_WORDS`` spell numbers; ``NEGATIONS``
maps negation words to a canonical marker; ``STOPWORDS`` are per-language function
words for a cheap language guess (words common in English, such as "a", "do", "no",
"was", are left out of the other languages' lists); ``FUNCTION_WORDS`` are English
words that are never a name even when capitalised.
"""

from __future__ import annotations

from types import MappingProxyType


def _group(canonical: str, synonyms: str = "") -> dict[str, str]:
    """``canonical`` and its space-separated ``synonyms``, all mapped to ``canonical``."""
    return dict.fromkeys((canonical, *synonyms.split()), canonical)


def _same(words: str) -> dict[str, str]:
    """Space-separated ``words``, each its own term."""
    return {word: word for word in words.split()}


def _words(text: str) -> list[str]:
    return text.split()


_UNITS = {
    **_group("km", "kms kilometer kilometers kilometre kilometres"),
    **_group("mi", "mile miles"),
    **_group("m", "meter meters metre metres"),
    **_group("cm", "centimeter centimeters centimetre centimetres"),
    **_group("mm", "millimeter millimeters millimetre millimetres"),
    **_group("ft", "foot feet"),
    **_group("inch", "inches"),
    **_group("yd", "yard yards"),
    **_group("kg", "kgs kilogram kilograms kilo kilos"),
    **_group("g", "gram grams"),
    **_group("lb", "lbs pound pounds"),
    **_group("oz", "ounce ounces"),
    **_group("l", "liter liters litre litres"),
    **_group("ml", "milliliter milliliters millilitre millilitres"),
    **_group("gal", "gallon gallons"),
    **_group("cup", "cups"),
    **_group("tbsp", "tablespoon tablespoons"),
    **_group("tsp", "teaspoon teaspoons"),
    **_group("°c", "celsius centigrade"),
    **_group("°f", "fahrenheit"),
    **_group("kelvin"),
    **_group("s", "sec secs seconds"),
    **_group("min", "mins minute minutes"),
    **_group("h", "hr hrs hour hours"),
    **_group("day", "days"),
    **_group("week", "weeks"),
    **_group("month", "months"),
    **_group("year", "years yr yrs"),
    **_group("decade", "decades"),
    **_group("century", "centuries"),
    **_group("%", "percent pct"),
    **_group("usd", "$ dollar dollars bucks"),
    **_group("eur", "€ euro euros"),
    **_group("gbp", "£ sterling"),
    **_group("jpy", "¥ yen"),
    **_group("kb", "kilobyte kilobytes"),
    **_group("mb", "megabyte megabytes"),
    **_group("gb", "gigabyte gigabytes"),
    **_group("tb", "terabyte terabytes"),
    **_group("mph"),
    **_group("km/h", "kph kmh"),
    **_group("kcal", "calorie calories cal"),
}

# Comparisons and polar opposites (synonyms folded onto one pole).
_POLAR = {
    **_group(
        "max",
        "maximum largest biggest highest greatest tallest longest heaviest deepest widest most top",
    ),
    **_group("min", "minimum smallest lowest least shortest tiniest lightest shallowest bottom"),
    **_group(
        "more",
        "greater larger bigger higher taller longer above heavier wider thicker stronger "
        "richer deeper louder brighter harder",
    ),
    **_group(
        "less",
        "fewer smaller lower shorter below lighter narrower thinner weaker poorer shallower "
        "quieter dimmer softer",
    ),
    **_group("near", "nearest closest nearer closer"),
    **_group("far", "farthest furthest farther further"),
    **_group("before", "prior"),
    **_group("after"),
    **_group("last", "final"),
    **_group("newest", "latest youngest"),
    **_group("oldest", "earliest"),
    **_group("fast", "fastest faster quickest quicker"),
    **_group("slow", "slowest slower"),
    **_group("hot", "hottest hotter warmest warmer"),
    **_group("cold", "coldest colder"),
    **_group("cheap", "cheapest cheaper inexpensive"),
    **_group("expensive", "costliest pricier"),
    **_group("better", "best"),
    **_group("bad", "worse worst terrible"),
    **_group("unsafe", "dangerous harmful"),
    **_group("enable", "enabled enabling activate"),
    **_group("disable", "disabled disabling deactivate"),
    **_group("off"),
    # Marked particles of phrasal verbs: "zoom out", "log out", "shut down".
    **_group("out"),
    **_group("down"),
    **_group("encrypt", "encrypted encryption"),
    **_group("decrypt", "decrypted decryption"),
    **_group("compress", "compressed compression"),
    **_group("decompress", "decompressed decompression"),
    **_group("upload", "uploaded uploading"),
    **_group("download", "downloaded downloading"),
    **_group("import", "importing"),
    **_group("export", "exporting"),
    **_group("buy", "buying purchase"),
    **_group("sell", "selling"),
    **_group("add", "install installing"),
    **_group("remove", "delete deleting uninstall uninstalling"),
    **_group("increase", "raise grow"),
    **_group("decrease", "reduce shrink"),
    **_group("pro", "pros advantage advantages benefit benefits"),
    **_group("con", "cons disadvantage disadvantages drawback drawbacks"),
    **_group("asc", "ascending"),
    **_group("desc", "descending"),
    **_group("win", "won winner winning"),
    **_group("lose", "lost loser losing"),
    **_group("open", "opening"),
    **_group("close", "closing"),
    **_group("start", "begin beginning"),
    **_group("stop", "halt pause"),
    **_group("push"),
    **_group("pull"),
    **_same("north south east west left right true false"),
    **_same("male female"),
    **_group("input", "inputs"),
    **_group("output", "outputs"),
}

_LANGUAGES = {
    **_same(
        "english spanish french german italian portuguese dutch russian chinese cantonese "
        "japanese korean arabic hindi bengali turkish polish swedish norwegian danish finnish "
        "greek hebrew vietnamese thai indonesian ukrainian czech hungarian romanian latin "
        "swahili persian urdu tagalog"
    ),
    **_group("chinese", "mandarin"),
    **_group("persian", "farsi"),
}

_TECH = {
    **_same(
        "python javascript typescript java kotlin swift rust ruby php perl scala haskell "
        "elixir erlang clojure lua julia matlab bash zsh powershell sql mysql sqlite mongodb "
        "redis html css dart fortran cobol zig ocaml react vue angular svelte django flask "
        "fastapi rails numpy pandas tensorflow pytorch docker kubernetes nginx apache linux "
        "windows ubuntu debian android ios excel git github gitlab aws azure gcp s3 json yaml "
        "xml csv"
    ),
    **_group("javascript", "js"),
    **_group("typescript", "ts"),
    **_group("golang"),
    **_group("postgresql", "postgres"),
    **_group("node", "nodejs"),
    **_group("kubernetes", "k8s"),
    **_group("macos", "mac osx"),
}

_PLACES = _same(
    "afghanistan albania algeria argentina armenia australia austria bangladesh belgium "
    "bolivia brazil bulgaria cambodia cameroon canada chile china colombia croatia cuba "
    "cyprus denmark ecuador egypt estonia ethiopia finland france georgia germany ghana "
    "greece guatemala haiti honduras hungary iceland india indonesia iran iraq ireland "
    "israel italy jamaica japan jordan kazakhstan kenya korea kuwait latvia lebanon libya "
    "lithuania luxembourg madagascar malaysia mexico mongolia morocco nepal netherlands "
    "nigeria norway pakistan panama paraguay peru philippines poland portugal qatar "
    "romania russia senegal serbia singapore slovakia slovenia somalia spain sudan sweden "
    "switzerland syria taiwan tanzania thailand tunisia turkey uganda ukraine uruguay "
    "venezuela vietnam yemen zambia zimbabwe england scotland wales britain uk usa "
    "america europe asia africa antarctica australia london paris berlin madrid rome "
    "tokyo osaka kyoto beijing shanghai sydney melbourne toronto vancouver montreal "
    "chicago boston seattle dubai moscow istanbul cairo delhi mumbai bangkok seoul lisbon "
    "amsterdam vienna prague dublin stockholm oslo copenhagen helsinki athens warsaw "
    "budapest brussels zurich geneva barcelona milan venice florence munich hamburg miami "
    "houston dallas denver atlanta austin phoenix philadelphia lagos nairobi johannesburg "
    "california texas florida washington oregon nevada arizona colorado utah ohio "
    "michigan illinois virginia massachusetts pennsylvania alaska hawaii bavaria ontario "
    "quebec sun moon earth mercury venus mars jupiter saturn uranus neptune pluto everest "
    "kilimanjaro alps andes himalayas google amazon microsoft tesla netflix facebook "
    "twitter openai nvidia spacex youtube instagram whatsapp spotify"
)

_TIME = {
    **_same(
        "monday tuesday wednesday thursday friday saturday sunday january february march "
        "april june july august september october november december spring summer winter "
        "today tomorrow yesterday tonight weekend morning afternoon evening night noon "
        "midnight"
    ),
    **_group("autumn", "fall"),
}

_COLOURS = {
    **_same("red orange yellow green blue purple pink brown black"),
    **_same("white silver"),
    **_group("gray", "grey"),
    **_group("gold", "golden"),
}

TERMS: MappingProxyType[str, str] = MappingProxyType(
    {**_COLOURS, **_TIME, **_PLACES, **_TECH, **_LANGUAGES, **_POLAR, **_UNITS}
)

NUMBER_WORDS: MappingProxyType[str, int] = MappingProxyType(
    {
        word: value
        for value, word in enumerate(
            _words(
                "zero one two three four five six seven eight nine ten eleven twelve "
                "thirteen fourteen fifteen sixteen seventeen eighteen nineteen"
            )
        )
    }
    | {"twenty": 20, "thirty": 30, "forty": 40, "fifty": 50, "sixty": 60, "seventy": 70}
    | {"eighty": 80, "ninety": 90, "dozen": 12}
)
SCALE_WORDS: MappingProxyType[str, int] = MappingProxyType(
    {"hundred": 100, "thousand": 1000, "million": 10**6, "billion": 10**9, "trillion": 10**12}
)
ORDINAL_WORDS: MappingProxyType[str, int] = MappingProxyType(
    {
        word: value
        for value, word in enumerate(
            _words(
                "first second third fourth fifth sixth seventh eighth ninth tenth eleventh "
                "twelfth thirteenth fourteenth fifteenth sixteenth seventeenth eighteenth "
                "nineteenth twentieth"
            ),
            start=1,
        )
    }
)
ORDINAL_SUFFIXES = frozenset({"st", "nd", "rd", "th"})

NEGATIONS: MappingProxyType[str, str] = MappingProxyType(
    {
        **_group(
            "not",
            "no never none nothing nobody neither nor cannot non nowhere nicht kein keine nunca "
            "jamais niet geen nem não mai",
        ),
        **_group(
            "without", "except excluding exclude excludes sans sin ohne zonder senza sem unless"
        ),
    }
)

FUNCTION_WORDS = frozenset(
    _words("""a an the and or but nor of to in on at for with by from about as into onto over
    under is are was were be been being am it its this that these those what which who
    whom whose when where why how i me my mine you your yours he him his she her hers we
    us our they them their do does did done can could would should will shall may might
    must please thanks thank hi hello hey ok okay yes no not if then than so also just
    any some all each every there here""")
)

STOPWORDS: MappingProxyType[str, frozenset[str]] = MappingProxyType(
    {
        "en": frozenset(
            _words("""the is are was were what how why who which of and to with you your my does
            do did can this that it for please me i an be have has will would should
            could tell give write explain make get""")
        ),
        "es": frozenset(
            _words("""el la los las es qué que cómo cuál cuáles por para una un del con está son
            y mi muy de en se lo al su dónde""")
        ),
        "fr": frozenset(
            _words("""le la les est et une un des du pour avec quel quelle quels comment je vous
            tu pas sur dans ce mon ma mes moi qui que de en au aux où""")
        ),
        "de": frozenset(
            _words("""der die das ist und ein eine einen nicht mit wie ich für auf sind zu den dem
            des im es sie du mein wo warum welche""")
        ),
        "it": frozenset(
            _words("""il lo gli la le è e di che come per una un sono con della del cosa qual quale
            non perché mi ti dell nel alla""")
        ),
        "pt": frozenset(
            _words("""o os é e não uma um com para como qual quais você da dos das são em que na
            meu minha""")
        ),
        "nl": frozenset(
            _words("""de het een is en van wat hoe niet met voor zijn ik op je dat die er te""")
        ),
    }
)
