"""Config AWS would refuse half way through a deploy is refused at config time: the domain's
length and last label, each function's 4 KB environment, commas and too many wildcards in the
invalidation paths, and the one token rule shared with the function."""

from __future__ import annotations

import json

import pytest

from function import webhook_settings
from infra import environments
from infra.environments import (
    ENVIRONMENT_MAX_BYTES,
    check_environment_sizes,
    config_time_environments,
    environment_size,
)
from infra.settings import MAX_WILDCARD_PATHS, ConfigError, parse_site_config
from tests.program.program_harness import (
    TEST_API_TOKEN,
    TEST_TOKEN,
    config_error,
    dev_config,
    run_committed_stack,
    run_program,
)

FUNCTION = "aws:lambda/function:Function"


def _values(stack: str = "dev", **overrides: str | None) -> dict[str, str]:
    values, _ = dev_config(stack)
    values["webhookToken"] = TEST_TOKEN
    for key, value in overrides.items():
        if value is None:
            values.pop(key, None)
        else:
            values[key] = value
    return values


def _refusal(values: dict[str, str]) -> ConfigError:
    with pytest.raises(ConfigError) as caught:
        parse_site_config(values)
    return caught.value


def _paths(count: int, length: int = 40) -> list[str]:
    """``count`` distinct plain paths of ``length`` characters."""
    return [f"/{i:05d}".ljust(length, "p") for i in range(count)]


# -- domain ------------------------------------------------------------------------------------


def _domain(length: int) -> str:
    """A valid host name of exactly ``length`` characters ending in .example.com."""
    suffix = ".example.com"
    first = length - len(suffix)
    labels = [("a" * 63 + ".") for _ in range(first // 64)]
    rest = first - 64 * len(labels)
    return "".join(labels) + "a" * rest + suffix


def test_domain_of_64_characters_is_accepted():
    domain = _domain(64)
    assert len(domain) == 64
    assert parse_site_config(_values(domain=domain, hostedZone="example.com")).domain == domain


def test_domain_longer_than_acms_64_characters_is_refused():
    error = _refusal(_values(domain=_domain(65), hostedZone="example.com"))
    assert error.key == "domain"
    assert "65 characters" in str(error)
    assert str(error).endswith("allowed: at most 64 characters")


@pytest.mark.parametrize("domain", ["lambda.example.c0m", "hooks.internal.123", "a.b.x-y"])
def test_domain_whose_last_label_is_not_letters_only_is_refused(domain):
    error = _refusal(_values(domain=domain, hostedZone=None))
    assert error.key == "domain"
    assert "not letters only" in str(error)
    assert "letters only after the last '.'" in str(error)


def test_domain_limits_stop_the_program_before_any_resource():
    run = run_program({"domain": _domain(70), "hostedZone": "example.com"})
    assert config_error(run).key == "domain"
    assert (run.resources, run.invokes) == ([], [])


# -- invalidation paths ------------------------------------------------------------------------


def test_invalidation_path_with_a_comma_is_refused():
    error = _refusal(_values(invalidationPaths='["/a,b", "/c"]'))
    assert error.key == "invalidationPaths"
    assert "'/a,b' must not contain ','" in str(error)
    assert "%2C" in str(error)


def test_fifteen_wildcard_paths_are_accepted():
    paths = [f"/section{i}/*" for i in range(MAX_WILDCARD_PATHS)] + ["/index.html"]
    settings = parse_site_config(_values(invalidationPaths=json.dumps(paths)))
    assert len(settings.invalidation_paths) == 16


def test_sixteen_wildcard_paths_are_refused():
    paths = [f"/section{i}/*" for i in range(MAX_WILDCARD_PATHS + 1)]
    error = _refusal(_values(invalidationPaths=json.dumps(paths)))
    assert error.key == "invalidationPaths"
    assert "16 paths hold a '*'" in str(error)
    assert "at most 15 with a '*'" in str(error)


# -- the 4 KB environment ----------------------------------------------------------------------


def test_environment_size_counts_names_values_and_json_punctuation():
    # {"A":"bc","D":"e"} is 18 bytes, as Lambda measures it ("String measured: {...}").
    assert environment_size({"A": "bc", "D": "e"}) == len('{"A":"bc","D":"e"}') == 18
    assert environment_size({"P": "/é"}) == len('{"P":"/é"}'.encode())


def test_config_time_estimate_is_an_upper_bound_close_to_the_real_environment(own_alb_run):
    settings = parse_site_config(_values())
    estimate = config_time_environments(settings, "dev")
    real = {
        "ingest": own_alb_run.ingest(FUNCTION).plain["environment"]["variables"],
        "worker": own_alb_run.worker(FUNCTION).plain["environment"]["variables"],
    }
    for function, variables in real.items():
        assert set(estimate[function]) == set(variables)
        margin = environment_size(estimate[function]) - environment_size(variables)
        assert 0 <= margin <= 64, (function, margin)


def _count_that_fits(build, limit: int = ENVIRONMENT_MAX_BYTES) -> int:
    """The largest ``n`` whose settings (``build(n)``) keep every environment within ``limit``."""
    n = 1
    while all(environment_size(v) <= limit for v in build(n + 1).values()):
        n += 1
    return n


def test_too_many_paths_for_the_ingests_environment_are_refused_naming_invalidation_paths():
    def build(n):
        values = _values(invalidationPaths=json.dumps(_paths(n)))
        return config_time_environments(parse_site_config(values), "dev")

    fits = _count_that_fits(build)
    assert 80 <= fits <= 110  # "about 80 long paths already exceed it"
    check_environment_sizes(
        parse_site_config(_values(invalidationPaths=json.dumps(_paths(fits)))), "dev"
    )
    too_many = parse_site_config(_values(invalidationPaths=json.dumps(_paths(fits + 1))))
    with pytest.raises(ConfigError) as caught:
        check_environment_sizes(too_many, "dev")
    assert caught.value.key == "invalidationPaths"
    message = str(caught.value)
    assert "the ingest function's Lambda environment would take" in message
    assert "INVALIDATION_PATHS alone" in message
    assert "at most 4096 bytes" in message


def test_too_many_distributions_are_refused_naming_distribution_ids():
    ids = [f"E{i:012d}X" for i in range(300)]
    settings = parse_site_config(_values(distributionIds=json.dumps(ids)))
    with pytest.raises(ConfigError) as caught:
        check_environment_sizes(settings, "dev")
    assert caught.value.key == "distributionIds"
    assert "DISTRIBUTION_IDS alone" in str(caught.value)


def test_the_reconcilers_environment_is_measured_too():
    # The reconciler's environment holds the webhook endpoint and Netlify's API URL besides
    # the paths, so some path lists fit the ingest and the worker but not the reconciler.
    def build(n):
        values = _values("dev-url", invalidationPaths=json.dumps(_paths(n)))
        return config_time_environments(parse_site_config(values), "dev-url")

    fits_ingest = _count_that_fits(build)
    paths = json.dumps(_paths(fits_ingest))
    without = parse_site_config(_values("dev-url", invalidationPaths=paths))
    check_environment_sizes(without, "dev-url")  # no reconciler: fine
    with_reconciler = parse_site_config(
        _values("dev-url", invalidationPaths=paths, netlifyApiToken=TEST_API_TOKEN)
    )
    sizes = {
        f: environment_size(v)
        for f, v in config_time_environments(with_reconciler, "dev-url").items()
    }
    assert sizes["ingest"] <= ENVIRONMENT_MAX_BYTES < sizes["reconciler"], sizes
    with pytest.raises(ConfigError) as caught:
        check_environment_sizes(with_reconciler, "dev-url")
    assert caught.value.key == "invalidationPaths"
    assert "the reconciler function's Lambda environment" in str(caught.value)


def test_an_environment_too_large_stops_the_program_before_any_resource():
    run = run_program({"invalidationPaths": json.dumps(_paths(150))})
    assert config_error(run).key == "invalidationPaths"
    assert (run.resources, run.invokes) == ([], [])


def test_the_check_measures_what_the_program_builds():
    # One set of builders: the program's ingest environment is the builder's output.
    run = run_committed_stack("dev-url")
    assert run.error is None, run.error
    variables = run.ingest(FUNCTION).plain["environment"]["variables"]
    settings = parse_site_config(_values("dev-url"))
    rebuilt = environments.with_secrets_version(
        environments.function_environment(
            settings,
            run.outputs["secrets_parameter_name"],
            run.outputs["queue_url"],
        ),
        variables[webhook_settings.ENV_SECRETS_VERSION],
    )
    assert variables == rebuilt


# -- the token rule ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "token", ["a" * 15, "a" * 16, "a" * 128, "a" * 129, "abc_DEF-0123456789", "abc def 0123456789"]
)
def test_the_program_accepts_exactly_the_tokens_the_function_accepts(token):
    accepted_by_function = webhook_settings.TOKEN_PATTERN.fullmatch(token) is not None
    try:
        parse_site_config(_values(webhookToken=token))
        accepted_by_program = True
    except ConfigError as error:
        assert error.key == "webhookToken"
        assert str(error).endswith(f"allowed: {webhook_settings.TOKEN_RULE}")
        accepted_by_program = False
    assert accepted_by_program == accepted_by_function


@pytest.mark.parametrize("path", ["/hooks/a@b", "/hooks/a:b", "/hooks/a+b"])
def test_webhook_path_the_function_would_refuse_is_refused(path):
    # The ingest reads WEBHOOK_PATH with its own rule; a path it refuses would break every call.
    with pytest.raises(webhook_settings.SettingsError):
        webhook_settings.load_webhook_path({webhook_settings.ENV_WEBHOOK_PATH: path})
    assert _refusal(_values(webhookPath=path)).key == "webhookPath"
