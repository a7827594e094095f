"""``containerkit lint`` on malformed, odd and hostile files: the exit code and the message for each.

Every case runs the real command in a fresh folder. None may raise (the runner re-raises), print a
traceback, exit with anything but 0/1/2, or take more than a few seconds; exit 1 means findings only.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from click.testing import CliRunner

from containerkit.cli import main

PRIV = "securityContext: {privileged: true}"


def pod(spec: str, name: str = "p", kind: str = "Pod", api: str = "v1") -> str:
    return f"apiVersion: {api}\nkind: {kind}\nmetadata: {{name: {name}}}\nspec:\n{spec}"


def one_container(extra: str = "") -> str:
    return pod(f"  containers:\n  - name: app\n    image: busybox:1.36\n{extra}")


def bomb(levels: int) -> str:
    rows = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    rows += [f"a{i}: &a{i} [" + ",".join([f"*a{i - 1}"] * 9) + "]" for i in range(1, levels + 1)]
    return "apiVersion: v1\nkind: Pod\nmetadata: {name: bomb}\n" + "\n".join(rows) + "\n"


PRIV_POD = pod(f"  containers:\n  - name: app\n    image: busybox:1.36\n    {PRIV}\n", name="priv")
JSON_POD = json.dumps(
    {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": "j"},
        "spec": {"containers": [{"name": "a", "image": "x:1", "securityContext": {"privileged": True}}]},
    },
    indent=2,
)
ARGO = """\
apiVersion: argoproj.io/v1alpha1
kind: Workflow
metadata: {name: wf}
spec:
  entrypoint: main
  templates:
  - name: main
    steps: [[{name: s, template: run}]]
  - name: run
    container:
      image: busybox:1.36
      securityContext: {privileged: true}
"""


@dataclass
class Case:
    id: str
    files: dict[str, str | bytes]
    code: int
    says: list[str]
    args: list[str] = field(default_factory=list)
    lint: list[str] | None = None  # paths to lint (default: every file)


CASES = [
    # ---- wrong field types: a per-file error naming file, line, field path, expected and found
    Case(
        "containers-string",
        {"m.yaml": pod("  containers: app\n")},
        2,
        ["m.yaml:5: Pod p: spec.containers: expected a list of mappings, found a string ('app')"],
    ),
    Case(
        "container-string",
        {"m.yaml": pod("  containers:\n  - app\n")},
        2,
        ["m.yaml:6: Pod p: spec.containers[0]: expected a mapping, found a string ('app')"],
    ),
    Case(
        "container-int",
        {"m.yaml": pod("  containers: [5]\n")},
        2,
        ["spec.containers[0]: expected a mapping, found an integer (5)"],
    ),
    Case(
        "container-securitycontext-list",
        {"m.yaml": one_container("    securityContext: [privileged]\n")},
        2,
        ["m.yaml:8: Pod p: spec.containers[0].securityContext: expected a mapping, found a list"],
    ),
    Case(
        "ports-mapping",
        {"m.yaml": one_container("    ports: {http: 80}\n")},
        2,
        ["spec.containers[0].ports: expected a list of mappings, found a mapping"],
    ),
    Case(
        "pod-securitycontext-string",
        {"m.yaml": pod("  securityContext: strict\n  containers: []\n")},
        2,
        ["m.yaml:5: Pod p: spec.securityContext: expected a mapping, found a string ('strict')"],
    ),
    Case(
        "volumes-string",
        {"m.yaml": pod("  volumes: data\n  containers: []\n")},
        2,
        ["spec.volumes: expected a list of mappings, found a string ('data')"],
    ),
    Case(
        "env-string",
        {"m.yaml": one_container("    env: A=1\n")},
        2,
        ["spec.containers[0].env: expected a list of mappings, found a string ('A=1')"],
    ),
    Case(
        "resources-string",
        {"m.yaml": one_container("    resources: small\n")},
        2,
        ["spec.containers[0].resources: expected a mapping, found a string ('small')"],
    ),
    Case(
        "env-item-string",
        {"m.yaml": one_container("    env:\n    - A=1\n")},
        2,
        ["m.yaml:9: Pod p: spec.containers[0].env[0]: expected a mapping, found a string ('A=1')"],
    ),
    Case(
        "volume-item-string",
        {"m.yaml": pod("  volumes: [data]\n  containers: []\n")},
        2,
        ["spec.volumes[0]: expected a mapping, found a string ('data')"],
    ),
    Case(
        "liveness-probe-yes",
        {"m.yaml": one_container("    livenessProbe: yes\n")},
        2,
        ["spec.containers[0].livenessProbe: expected a mapping, found a boolean (true)"],
    ),
    Case(
        "sysctls-string",
        {"m.yaml": pod("  securityContext: {sysctls: kernel.msgmax=1}\n  containers: []\n")},
        2,
        ["spec.securityContext.sysctls: expected a list of mappings, found a string"],
    ),
    Case(
        "seccomp-string",
        {"m.yaml": pod("  securityContext: {seccompProfile: RuntimeDefault}\n  containers: []\n")},
        2,
        ["spec.securityContext.seccompProfile: expected a mapping, found a string ('RuntimeDefault')"],
    ),
    Case(
        "privileged-string",
        {"m.yaml": one_container('    securityContext: {privileged: "true"}\n')},
        2,
        ["securityContext.privileged: expected a boolean (true/false), found a string ('true')"],
    ),
    Case(
        "run-as-user-string",
        {"m.yaml": one_container('    securityContext: {runAsUser: "1000"}\n')},
        2,
        ["securityContext.runAsUser: expected an integer, found a string ('1000')"],
    ),
    Case(
        "int-with-10000-digits",
        {"m.yaml": one_container("    securityContext: {runAsUser: " + "1" * 10000 + "}\n")},
        2,
        ["securityContext.runAsUser: expected an integer, found a string ('1111"],
    ),
    Case(
        "deployment-template-spec-list",
        {"m.yaml": pod("  template:\n    spec: [a]\n", name="d", kind="Deployment", api="apps/v1")},
        2,
        ["m.yaml:6: Deployment d: spec.template.spec: expected a mapping, found a list"],
    ),
    Case(
        "cronjob-deep-wrong-type",
        {
            "m.yaml": pod(
                "  jobTemplate:\n    spec:\n      template:\n        spec:\n          containers:\n"
                "          - {name: a, image: 'x:1', securityContext: no}\n",
                name="cj",
                kind="CronJob",
                api="batch/v1",
            )
        },
        2,
        [
            "spec.jobTemplate.spec.template.spec.containers[0].securityContext: "
            "expected a mapping, found a boolean"
        ],
    ),
    Case(
        "kind-int",
        {"m.yaml": "apiVersion: v1\nkind: 5\nmetadata: {name: x}\n"},
        2,
        ["m.yaml:2: kind: expected a string, found an integer (5)"],
    ),
    Case(
        "document-is-a-list",
        {"m.yaml": "apiVersion: v1\nkind: Pod\n---\n- a\n- b\n"},
        2,
        ["m.yaml:4: a manifest must be a mapping with apiVersion and kind, found a list"],
    ),
    Case(
        "config-map-data-int",
        {"m.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  port: 8080\n"},
        2,
        ["m.yaml:5: ConfigMap c: data.port: expected a string, found an integer (8080)"],
    ),
    # ---- one bad document does not hide the others
    Case(
        "wrong-type-beside-valid",
        {"m.yaml": pod("  containers: app\n", name="bad") + "---\n" + PRIV_POD},
        2,
        ["Pod bad: spec.containers", "Pod/priv", "PSS-B-002"],
    ),
    Case(
        "syntax-error-between-valid",
        {
            "m.yaml": PRIV_POD
            + "---\napiVersion: v1\nkind: Pod\nmetadata: {name: [x\n---\n"
            + PRIV_POD.replace("priv", "two")
        },
        2,
        ["m.yaml:13: invalid YAML", "Pod/priv", "Pod/two"],
    ),
    Case(
        "bad-file-beside-good-file",
        {"a.yaml": pod("  containers: 7\n"), "b.yaml": PRIV_POD},
        2,
        ["a.yaml:5: Pod p: spec.containers", "b.yaml  Pod/priv"],
    ),
    # ---- JSON and YAML styles kubectl accepts
    Case(
        "json-file",
        {"pod.json": JSON_POD},
        1,
        ["pod.json  Pod/j", "spec.containers[0].securityContext.privileged:13"],
    ),
    Case("json-in-yaml", {"pod.yaml": JSON_POD}, 1, ["pod.yaml  Pod/j", "PSS-B-002"]),
    Case(
        "json-tab-indented",
        {"pod.json": JSON_POD.replace("  ", "\t")},
        1,
        ["pod.json  Pod/j", "PSS-B-002"],
    ),
    Case(
        "json-stream",
        {"pods.json": JSON_POD + "\n" + JSON_POD.replace('"j"', '"k"')},
        1,
        ["Pod/j", "Pod/k"],
    ),
    Case(
        "json-invalid",
        {"pod.json": '{"apiVersion": "v1", "kind": "Pod",\n "spec": [}'},
        2,
        ["pod.json:2: invalid"],
    ),
    Case(
        "json-duplicate-key",
        {"pod.json": '{"apiVersion": "v1", "kind": "Pod", "kind": "Pod"}'},
        2,
        ["duplicate key 'kind'"],
    ),
    Case(
        "flow-style-one-line",
        {
            "pod.yaml": "{apiVersion: v1, kind: Pod, metadata: {name: f}, "
            '"spec": {containers: [{name: a, image: "x:1", ' + PRIV + "}]}}\n"
        },
        1,
        ["pod.yaml  Pod/f", "PSS-B-002"],
    ),
    Case(
        "quoted-keys-block-style",
        {"pod.yaml": PRIV_POD.replace("apiVersion:", '"apiVersion":').replace("kind:", "'kind':")},
        1,
        ["Pod/priv", "PSS-B-002"],
    ),
    Case(
        "list-kind",
        {"l.yaml": "apiVersion: v1\nkind: List\nitems:\n- " + JSON_POD.replace("\n", "\n  ") + "\n"},
        1,
        ["Pod/j", "PSS-B-002"],
    ),
    # ---- encodings
    Case("utf8-bom", {"m.yaml": b"\xef\xbb\xbf" + PRIV_POD.encode()}, 1, ["Pod/priv"]),
    Case("utf16-bom", {"m.yaml": PRIV_POD.encode("utf-16")}, 1, ["Pod/priv"]),
    Case(
        "latin1",
        {"m.yaml": PRIV_POD.replace("name: app", "name: caf\xe9").encode("latin-1")},
        2,
        ["m.yaml:6: not UTF-8 (byte 0xE9 at column 14): save the file as UTF-8"],
    ),
    Case(
        "utf16-without-bom",
        {"m.yaml": PRIV_POD.encode("utf-16-le")},
        2,
        ["contains NUL bytes: a binary file, or UTF-16 without a byte-order mark"],
    ),
    Case(
        "control-character",
        {"m.yaml": PRIV_POD.replace("app", "a\x07p")},
        2,
        ["invalid YAML", "control characters"],
    ),
    # ---- aliases, merges, depth, size, count
    Case(
        "billion-laughs-9-levels",
        {"m.yaml": bomb(9)},
        2,
        ["aliases and merges expand to more than 10000 values"],
    ),
    Case(
        "billion-laughs-raised-cap",
        {"m.yaml": bomb(3)},
        2,
        ["expand to more than 100 values"],
        ["--max-alias-nodes", "100"],
    ),
    Case(
        "recursive-alias",
        {"m.yaml": "apiVersion: v1\nkind: Pod\nx: &a [1, *a]\n"},
        2,
        ["recursive YAML alias"],
    ),
    Case(
        "undefined-alias",
        {"m.yaml": "apiVersion: v1\nkind: Pod\nx: *nope\n"},
        2,
        ["m.yaml:3: invalid YAML: found undefined alias"],
    ),
    Case(
        "self-merge",
        {"m.yaml": "apiVersion: v1\nkind: Pod\nx: &a {b: 1, <<: *a}\n"},
        2,
        ["merge includes the mapping it is in"],
    ),
    Case(
        "merge-keys-resolve",
        {
            "m.yaml": "x-sc: &sc {privileged: true, runAsUser: 5}\n"
            + pod(
                "  containers:\n  - name: app\n    image: busybox:1.36\n"
                "    securityContext: {<<: *sc, runAsUser: 50000}\n"
            )
        },
        1,
        ["PSS-B-002", "spec.containers[0].securityContext.privileged:1"],
    ),
    Case(
        "deep-nesting-100k",
        {"m.yaml": "apiVersion: v1\nkind: Pod\nx: " + "[" * 100_000 + "]" * 100_000 + "\n"},
        2,
        ["m.yaml:3: nested deeper than 64 levels"],
    ),
    Case(
        "deep-json-100k",
        {"m.json": '{"apiVersion": "v1", "kind": "Pod", "x": ' + '{"a": ' * 100_000 + "1" + "}" * 100_001},
        2,
        ["nested deeper than 64 levels"],
    ),
    Case("max-depth-option", {"m.yaml": PRIV_POD}, 2, ["nested deeper than 3 levels"], ["--max-depth", "3"]),
    Case(
        "max-file-size-option",
        {"m.yaml": PRIV_POD},
        2,
        ["over the 100-byte limit"],
        ["--max-file-size", "100"],
    ),
    Case(
        "max-documents-option",
        {"m.yaml": "---\n".join([PRIV_POD] * 3)},
        2,
        ["m.yaml:18: more than 2 documents (raise --max-documents"],
        ["--max-documents", "2"],
    ),
    Case(
        "1001-documents",
        {"m.yaml": "---\n".join(["apiVersion: v1\nkind: Namespace\n"] * 1001)},
        2,
        ["more than 1000 documents"],
    ),
    Case(
        "3-MiB-string-under-the-limit",
        {"m.yaml": one_container(f"    args: ['{'x' * 3_000_000}']\n    {PRIV}\n")},
        1,
        ["PSS-B-002"],
    ),
    Case(
        "duplicate-key",
        {"m.yaml": pod("  containers: []\n  containers: []\n")},
        2,
        ["m.yaml:6: duplicate key 'containers' (first at line 5)"],
    ),
    Case(
        "duplicate-key-compose",
        {"docker-compose.yaml": "services:\n  web: {image: 'x:1'}\n  web: {image: 'y:1'}\n"},
        2,
        ["docker-compose.yaml:3: duplicate key 'web' (first at line 2)"],
    ),
    Case(
        "python-tag-is-data",
        {"m.yaml": PRIV_POD + "x: !!python/object/apply:os.system [touch pwned]\n"},
        1,
        ["PSS-B-002"],
    ),
    Case("custom-tag-is-data", {"m.yaml": PRIV_POD.replace("busybox:1.36", "!Ref image")}, 1, ["PSS-B-002"]),
    Case("bad-timestamp-is-a-string", {"m.yaml": PRIV_POD + "x: 2024-13-45\n"}, 1, ["PSS-B-002"]),
    # ---- kinds it does not lint, custom resources
    Case(
        "unknown-kinds-counted",
        {
            "m.yaml": "apiVersion: apiextensions.k8s.io/v1\nkind: CustomResourceDefinition\n"
            "metadata: {name: c}\n"
            "---\napiVersion: v1\nkind: Service\nmetadata: {name: s}\n---\n"
            "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"
        },
        0,
        ["3 documents not linted: CustomResourceDefinition, Service, Widget (example.com/v1) (unknown kind)"],
    ),
    Case(
        "fail-on-unknown",
        {"m.yaml": "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w}\n"},
        2,
        ["m.yaml:1: Widget (example.com/v1) is not linted: no pod path is configured"],
        ["--fail-on-unknown"],
    ),
    Case(
        "fail-on-unknown-ignores-builtins",
        {"m.yaml": "apiVersion: v1\nkind: Service\nmetadata: {name: s}\n"},
        0,
        ["1 document not linted: Service"],
        ["--fail-on-unknown"],
    ),
    Case(
        "deployment-config",
        {
            "m.yaml": pod(
                f"  template:\n    spec:\n      containers:\n      - {{name: a, image: 'x:1', {PRIV}}}\n",
                name="dc",
                kind="DeploymentConfig",
                api="apps.openshift.io/v1",
            )
        },
        1,
        ["DeploymentConfig/dc", "spec.template.spec.containers[0].securityContext.privileged:8"],
    ),
    Case(
        "knative-service",
        {
            "m.yaml": pod(
                f"  template:\n    spec:\n      containers:\n      - {{image: 'x:1', {PRIV}}}\n",
                name="kn",
                kind="Service",
                api="serving.knative.dev/v1",
            )
        },
        1,
        ["Service/kn", "PSS-B-002"],
    ),
    Case(
        "argo-workflow",
        {"wf.yaml": ARGO},
        1,
        ["Workflow/wf[run]", "spec.templates[1].container.securityContext.privileged:12"],
    ),
    Case(
        "pod-paths-option",
        {
            "m.yaml": pod(
                f"  podTemplate:\n    spec:\n      containers:\n      - {{name: a, image: 'x:1', {PRIV}}}\n",
                name="n",
                kind="Notebook",
                api="kubeflow.org/v1",
            ),
            "paths.yaml": "- {kind: Notebook, group: kubeflow.org, path: spec.podTemplate}\n",
        },
        1,
        ["Notebook/n", "spec.podTemplate.spec.containers[0].securityContext.privileged:8"],
        ["--pod-paths", "paths.yaml"],
        ["m.yaml"],
    ),
    Case(
        "pod-paths-bad-file",
        {"m.yaml": PRIV_POD, "paths.yaml": "- {kind: Notebook, path: 5}\n"},
        2,
        ["entry 0: `path` must be a dotted path"],
        ["--pod-paths", "paths.yaml"],
        ["m.yaml"],
    ),
    Case("empty-folder", {"sub/README.md": "hello"}, 2, ["nothing to lint here"], lint=["sub"]),
    Case("empty-file", {"m.yaml": ""}, 2, ["cannot tell what this file is"]),
    # ---- secrets in the wrong object
    Case(
        "config-map-private-key",
        {
            "m.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n"
            "  key.pem: |\n    -----BEGIN PRIVATE KEY-----\n    MIIE\n"
        },
        1,
        ["ConfigMap/c", "HRD-014", "value is a private key"],
    ),
    Case(
        "config-map-password",
        {"m.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: c}\ndata:\n  DB_PASSWORD: hunter2\n"},
        1,
        ["data.DB_PASSWORD:5", "secret-like name with a literal value"],
    ),
    # ---- other sources
    Case(
        "helm-values-not-a-mapping",
        {"values.yaml": "- a\n- b\n"},
        2,
        ["values.yaml:1: Helm values must be a mapping"],
    ),
    Case(
        "compose-services-string",
        {"docker-compose.yaml": "services: web\n"},
        2,
        ["`services` must be a mapping"],
    ),
]


def test_the_table_is_big_enough() -> None:
    assert len(CASES) >= 40 and len({c.id for c in CASES}) == len(CASES)


def test_cli_limit_defaults_are_the_loader_defaults() -> None:
    from dataclasses import asdict

    from containerkit.cli.lint import DEFAULTS
    from containerkit.policy.sources.yaml_lines import DEFAULT_LIMITS

    assert asdict(DEFAULT_LIMITS) == DEFAULTS


@pytest.mark.parametrize("case", CASES, ids=[c.id for c in CASES])
def test_hostile_input(case: Case, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, content in case.files.items():
        path = tmp_path / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    paths = case.lint if case.lint is not None else sorted(case.files)
    started = time.perf_counter()
    result = CliRunner().invoke(main, ["lint", "--no-color", *paths, *case.args], catch_exceptions=False)
    elapsed = time.perf_counter() - started
    out = result.output
    assert "Traceback" not in out
    assert result.exit_code == case.code, out[-3000:]
    for text in case.says:
        assert text in out, f"{text!r} not in:\n{out[-3000:]}"
    assert elapsed < 5, f"{case.id} took {elapsed:.1f} s"
