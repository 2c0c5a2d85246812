"""Word lists the PII recognizers consult, all built from installed packages (nothing downloaded).

- ``dictionary_words``: English words (lower case) from the lemmatizer index shipped inside the
  spaCy model (WordNet-derived, ~83,000 entries). A capitalized dictionary word alone at the
  start of a subject line ("Broken on arrival") is a word, not a name.
- ``given_names`` / ``family_names``: the person-name lists of every Faker locale (~30,000
  each). Used to confirm weak name evidence: a lower-case name in chat ("thanks maria"), or a
  dictionary word that is also a name ("Grace").
- ``tech_terms``: software, languages and infrastructure vocabulary (hand-kept list below plus
  the names of the installed Python distributions). The small NER model calls "Python",
  "Linux" or "GraphQL" a LOCATION or PERSON; these are never either.

Each list is loaded once per process.
"""

from __future__ import annotations

import functools
import importlib
import importlib.metadata
import pkgutil
import re

# Vocabulary the NER model mislabels as places or people in technical text. Kept by hand:
# no installed package lists tool and language names, and the list is what a reviewer checks.
_TECH = """
ai ml llm api apis sdk cli gui ui ux url json yaml toml xml csv html css sql nosql graphql rest
grpc http https tcp udp ssh ssl tls dns vpn cdn oauth jwt saml ldap sso mfa 2fa
python java javascript typescript kotlin swift rust go golang ruby php perl scala haskell
elixir erlang clojure lua dart julia django jinja celery matlab fortran cobol bash zsh powershell c# f# c++
linux unix ubuntu debian fedora centos alpine windows macos ios android chromeos freebsd
docker kubernetes k8s helm terraform ansible puppet chef vagrant nginx apache tomcat
postgres postgresql mysql mariadb sqlite redis mongodb cassandra elasticsearch kafka
rabbitmq spark hadoop airflow dagster prefect dbt snowflake bigquery redshift databricks
aws azure gcp heroku vercel netlify cloudflare github gitlab bitbucket jira confluence
slack zoom teams jenkins circleci travis git svn mercurial npm yarn pip conda poetry cargo
maven gradle webpack vite babel eslint prettier react vue angular svelte django flask
fastapi rails laravel spring express nextjs nuxt node nodejs deno bun pandas numpy scipy
polars pytorch tensorflow keras jax sklearn spacy transformers huggingface openai
anthropic llama mistral gemini claude chatgpt gpt copilot excel word outlook powerpoint
chrome firefox safari edge opera wifi wi-fi bluetooth usb hdmi ethernet lte 5g 4g
pdf png jpeg jpg gif svg mp3 mp4 utf-8 unicode ascii regex lambda ec2 s3 rds iam vpc
json-ld markdown latex jupyter notebook colab vscode vim emacs intellij pycharm xcode
""".split()


@functools.lru_cache(maxsize=1)
def _lemma_index() -> dict[str, frozenset[str]]:
    import spacy

    from ftdata_pipeline.stages.pii.engine import SPACY_MODELS

    nlp = spacy.load(SPACY_MODELS["en"], exclude=["tok2vec", "tagger", "parser", "ner",
                                                   "attribute_ruler", "senter"])
    table = nlp.get_pipe("lemmatizer").lookups.get_table("lemma_index")
    return {pos: frozenset(w.replace("_", " ") for w in table[pos]) for pos in table}


def dictionary_words() -> frozenset[str]:
    """Lower-case English dictionary words from the installed spaCy model's lemma index."""
    return _all_words()


@functools.lru_cache(maxsize=1)
def _all_words() -> frozenset[str]:
    # WordNet (the lemma index) has no function words; spaCy's stop words add "than", "with"...
    from spacy.lang.en.stop_words import STOP_WORDS

    return frozenset().union(*_lemma_index().values()) | frozenset(STOP_WORDS)


@functools.lru_cache(maxsize=1)
def common_words() -> frozenset[str]:
    """Dictionary words that are also verbs, adjectives or adverbs ("will", "grace", "rose").

    The index lists proper names too, as lower-case nouns ("dennis", "paris"); a word found
    only as a noun may be a name, one found as a verb or adjective is an ordinary word as well.
    """
    from spacy.strings import get_string_id

    index = _lemma_index()  # keyed by the hash of the part of speech
    noun = get_string_id("noun")
    return frozenset().union(*(words for pos, words in index.items() if pos != noun))


def _names_of(value) -> list[str]:
    if isinstance(value, dict):  # Faker weights some lists: {name: weight}
        value = list(value)
    if isinstance(value, (list, tuple, set, frozenset)):
        return [v for v in value if isinstance(v, str)]
    return []


@functools.lru_cache(maxsize=1)
def _faker_names() -> tuple[frozenset[str], frozenset[str]]:
    import faker.providers.person as person

    given: set[str] = set()
    family: set[str] = set()
    for module in pkgutil.iter_modules(person.__path__):
        provider = getattr(
            importlib.import_module(f"faker.providers.person.{module.name}"), "Provider", None
        )
        if provider is None:
            continue
        for attr in ("first_names", "first_names_male", "first_names_female",
                     "first_names_nonbinary"):
            given.update(_names_of(vars(provider).get(attr)))
        family.update(_names_of(vars(provider).get("last_names")))
    # Latin-script names only (the texts this redactor reads), compared case-insensitively.
    latin = re.compile(r"^[A-Za-zÀ-ÖØ-öø-ÿĀ-ž' -]+$")
    return (
        frozenset(n.casefold() for n in given if latin.match(n) and len(n) > 1),
        frozenset(n.casefold() for n in family if latin.match(n) and len(n) > 1),
    )


def given_names() -> frozenset[str]:
    return _faker_names()[0]


def family_names() -> frozenset[str]:
    return _faker_names()[1]


def is_known_name(word: str) -> bool:
    w = word.casefold()
    return w in given_names() or w in family_names()


@functools.lru_cache(maxsize=1)
def tech_terms() -> frozenset[str]:
    """Tech vocabulary, lower case: the list above plus installed distribution names."""
    dists = {
        (d.metadata["Name"] or "").casefold() for d in importlib.metadata.distributions()
    }
    # Distribution names that are also given or family names ("alembic" is not, "colin" would
    # be) stay names: a package list must not switch off person detection.
    names = given_names() | family_names()
    return frozenset(_TECH) | frozenset(d for d in dists if len(d) > 2 and d not in names)


@functools.lru_cache(maxsize=1)
def place_names() -> frozenset[str]:
    """Cities, countries, states and regions of every Faker locale, lower case (Latin script).

    Tells a name the NER model took for a place ("Kateřina" as LOCATION) from a real place.
    """
    import faker.providers.address as address

    places: set[str] = set()
    for module in pkgutil.iter_modules(address.__path__):
        provider = getattr(
            importlib.import_module(f"faker.providers.address.{module.name}"), "Provider", None
        )
        if provider is None:
            continue
        for attr in ("cities", "city_names", "countries", "states", "provinces", "regions"):
            places.update(v.casefold() for v in _names_of(vars(provider).get(attr)))
    return frozenset(places)


@functools.lru_cache(maxsize=1)
def street_suffixes() -> tuple[str, ...]:
    """English street-type words: the USPS Publication 28 suffixes as Faker ships them."""
    from faker.providers.address.en_US import Provider

    words = {w.casefold() for w in Provider.street_suffixes}
    return tuple(sorted(words, key=lambda w: (-len(w), w)))
