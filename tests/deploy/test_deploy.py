#!/usr/bin/python3
"""Static validation of deploy/: the Dockerfile, the Kubernetes manifests and the systemd unit,
checked against the repository's sidecar.ini (keys, defaults), proxy/server.h (version, drain
grace) and the built binary (`sidecar --check-config` on the ConfigMap's ini, its shared
libraries). Docker and a cluster are not needed; systemd-analyze, apt-cache and dpkg are used when
present (a check that needs a missing tool is skipped with a printed note).

Usage: /usr/bin/python3 tests/deploy/test_deploy.py [path/to/sidecar]  (or SIDECAR_BIN=...)
Needs python3-yaml (Debian). Invariants: reads the tree, writes only temporary files; the one
server it starts (the health-check test) listens on a free 127.0.0.1 port and is stopped by pid.
Each test names the file and field it found wrong.
"""
import glob
import os
import re
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import unittest

import yaml

REPO = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
DEPLOY = os.path.join(REPO, "deploy")
K8S = os.path.join(DEPLOY, "kubernetes")
DOCKERFILE = os.path.join(DEPLOY, "Dockerfile")
DOCKERIGNORE = os.path.join(DEPLOY, "Dockerfile.dockerignore")
UNIT = os.path.join(DEPLOY, "systemd", "sidecar.service")
SYSUSERS = os.path.join(DEPLOY, "systemd", "sidecar.sysusers.conf")
SIDECAR_BIN = os.path.abspath(os.environ.get("SIDECAR_BIN") or os.path.join(REPO, "sidecar"))

# Measured with deploy/measure_rss.py (max_memory 64mb, glibc malloc; deploy/README.md): values of
# mixed sizes churned through a near-cache left 150 MiB resident (fragmentation: ~2 x max_memory
# plus ~23 MiB; 84-101 MiB since the heap's free pages are given back when idle, proxy/memtrim.c,
# a margin the request keeps) and peaked at 169-171 MiB (large replies in flight: ~2 x max_memory + 43 MiB).
# So the memory request must be >= 2 x max_memory + 32Mi and the limit >= 2 x max_memory + 64Mi.
HEAP_FACTOR = 2
REQUEST_OVERHEAD = 32 * 1024 * 1024
LIMIT_OVERHEAD = 64 * 1024 * 1024
# Packages of the test/bench tool chain, which the image's build stage must not need.
TEST_ONLY_PACKAGES = {"check", "redis-server", "redis-tools", "python3-redis", "nodejs", "npm",
                      "nutcracker", "valgrind", "python3-yaml"}
# Field names of the Kubernetes objects we write (core/v1, apps/v1), so a misspelt field (which
# kubectl would reject, and which a check looking for the right name would merely miss) fails here.
K8S_FIELDS = {
    "PodSpec": {"containers", "initContainers", "volumes", "terminationGracePeriodSeconds",
                "securityContext", "serviceAccountName", "automountServiceAccountToken",
                "nodeSelector", "affinity", "tolerations", "topologySpreadConstraints",
                "priorityClassName", "restartPolicy", "imagePullSecrets", "shareProcessNamespace",
                "enableServiceLinks", "dnsPolicy", "hostNetwork"},
    "Container": {"name", "image", "command", "args", "workingDir", "ports", "envFrom", "env",
                  "resources", "resizePolicy", "restartPolicy", "volumeMounts", "volumeDevices",
                  "livenessProbe", "readinessProbe", "startupProbe", "lifecycle",
                  "terminationMessagePath", "terminationMessagePolicy", "imagePullPolicy",
                  "securityContext", "stdin", "stdinOnce", "tty"},
    "Probe": {"httpGet", "tcpSocket", "exec", "grpc", "initialDelaySeconds", "periodSeconds",
              "timeoutSeconds", "successThreshold", "failureThreshold",
              "terminationGracePeriodSeconds"},
    "SecurityContext": {"runAsNonRoot", "runAsUser", "runAsGroup", "allowPrivilegeEscalation",
                        "readOnlyRootFilesystem", "capabilities", "privileged", "seccompProfile",
                        "procMount", "seLinuxOptions", "appArmorProfile", "windowsOptions"},
}
# Hardening the unit must keep: key -> required value (None = present with any value).
UNIT_HARDENING = {
    "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
    "PrivateTmp": "yes", "PrivateDevices": "yes", "ProtectKernelTunables": "yes",
    "ProtectKernelModules": "yes", "ProtectKernelLogs": "yes", "ProtectControlGroups": "yes",
    "MemoryDenyWriteExecute": "yes", "RestrictNamespaces": "yes", "RestrictRealtime": "yes",
    "RestrictSUIDSGID": "yes", "LockPersonality": "yes", "SystemCallArchitectures": "native",
    "CapabilityBoundingSet": "",
}


def note(msg):
    print(f"\n  note: {msg}", file=sys.stderr)


# ---- sidecar.ini, as the sidecar reads it (inih: ';'/'#' comment lines, " ;" inline comments,
# optional double quotes); --check-config stays the authority on values ----

def ini_parse(text, where):
    """[(section, key, value, line)]; raises ValueError on a line that is not one of the forms."""
    out, section = [], ""
    for n, raw in enumerate(text.splitlines(), 1):
        line = raw.strip()
        if not line or line[0] in ";#":
            continue
        if line.startswith("["):
            m = re.match(r"\[([^\]]*)\]", line)
            if not m:
                raise ValueError(f"{where}:{n}: bad section header {raw!r}")
            section = m.group(1).strip()
            continue
        if "=" not in line:
            raise ValueError(f"{where}:{n}: not 'key = value': {raw!r}")
        key, value = (s.strip() for s in line.split("=", 1))
        if value.startswith('"') and value.find('"', 1) > 0:
            value = value[1:value.find('"', 1)]
        else:
            value = re.split(r"\s;", value, maxsplit=1)[0].strip()
        out.append((section, key, value, n))
    return out


def ini_dict(text, where):
    d = {}
    for section, key, value, _ in ini_parse(text, where):
        d.setdefault(section, {})[key] = value
    return d


def read(path):
    with open(path) as f:
        return f.read()


DEFAULTS = ini_dict(read(os.path.join(REPO, "sidecar.ini")), "sidecar.ini")


def server_h_define(name):
    m = re.search(rf"#define\s+{name}\s+(\S+)", read(os.path.join(REPO, "proxy", "server.h")))
    if not m:
        raise AssertionError(f"proxy/server.h: no #define {name}")
    return m.group(1).strip('"')


SIDECAR_VERSION = server_h_define("SIDECAR_VERSION")
SHUTDOWN_GRACE_S = int(server_h_define("SERVER_SHUTDOWN_GRACE_MS")) / 1000.0


def mem_bytes(text):
    """A sidecar memory size (bytes, k/kb/m/mb/g/gb as Redis spells them)."""
    m = re.fullmatch(r"(\d+)\s*([kmg]b?)?", text.strip().lower())
    if not m:
        raise ValueError(f"not a memory size: {text!r}")
    unit = m.group(2) or ""
    scale = {"": 1, "k": 1000, "kb": 1024, "m": 1000 ** 2, "mb": 1024 ** 2, "g": 1000 ** 3,
             "gb": 1024 ** 3}[unit]
    return int(m.group(1)) * scale


def quantity(text):
    """A Kubernetes resource quantity (128Mi, 1Gi, 500M, 100m, 2) as a number."""
    m = re.fullmatch(r"([0-9.]+)([a-zA-Z]*)", str(text).strip())
    if not m:
        raise ValueError(f"not a quantity: {text!r}")
    suffix = {"": 1, "m": 1e-3, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12, "Ki": 1024,
              "Mi": 1024 ** 2, "Gi": 1024 ** 3, "Ti": 1024 ** 4}
    if m.group(2) not in suffix:
        raise ValueError(f"unknown quantity suffix in {text!r}")
    return float(m.group(1)) * suffix[m.group(2)]


def addr_port(addr):
    """The port of the first address of a listen value ("h:p, h2:p2", "[::1]:p")."""
    first = re.split(r"[\s,]+", addr.strip())[0]
    return int(first.rsplit(":", 1)[1])


# ---- the Dockerfile ----

def dockerfile_instructions(text):
    """[(INSTRUCTION, args)] with continuations joined and comment lines dropped."""
    out, buf = [], ""
    for raw in text.splitlines():
        s = raw.strip()
        if s.startswith("#") or (not s and not buf):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        buf += s
        if buf.strip():
            word, _, rest = buf.strip().partition(" ")
            out.append((word.upper(), rest.strip()))
        buf = ""
    return out


def dockerfile_stages(text):
    """[{'from': image, 'name': alias, 'ins': [(INSTR, args)]}]"""
    stages = []
    for ins, args in dockerfile_instructions(text):
        if ins == "FROM":
            parts = args.split()
            parts = [p for p in parts if not p.startswith("--")]
            name = parts[2] if len(parts) >= 3 and parts[1].lower() == "as" else None
            stages.append({"from": parts[0], "name": name, "ins": []})
        elif stages:
            stages[-1]["ins"].append((ins, args))
    return stages


def apt_packages(stage):
    pkgs = []
    for ins, args in stage["ins"]:
        if ins != "RUN":
            continue
        for cmd in re.split(r"&&|;", args):
            words = cmd.split()
            if "apt-get" in words and "install" in words:
                pkgs += [w for w in words[words.index("install") + 1:] if not w.startswith("-")]
    return pkgs


def exec_form(args):
    args = args.strip()
    if args.startswith("["):
        return yaml.safe_load(args)
    return shlex.split(args)


def image_uid():
    users = [a for i, a in dockerfile_stages(read(DOCKERFILE))[-1]["ins"] if i == "USER"]
    if not users or not users[-1].split(":")[0].isdigit():
        raise AssertionError("deploy/Dockerfile: the runtime stage has no numeric USER")
    return int(users[-1].split(":")[0])


def install_deps_list(name):
    m = re.search(rf'^{name}="([^"]*)"', read(os.path.join(DEPLOY, "install-deps.sh")), re.M)
    if not m:
        raise AssertionError(f"deploy/install-deps.sh: no {name}=\"...\" line")
    return m.group(1).split()


# ---- Kubernetes ----

def yaml_files():
    return sorted(glob.glob(os.path.join(DEPLOY, "**", "*.yaml"), recursive=True) +
                  glob.glob(os.path.join(DEPLOY, "**", "*.yml"), recursive=True))


def k8s_objects():
    objs = []
    for path in yaml_files():
        for doc in yaml.safe_load_all(read(path)):
            if doc is not None:
                objs.append((os.path.relpath(path, REPO), doc))
    return objs


def workloads():
    return [(p, o) for p, o in k8s_objects()
            if o.get("kind") in ("Deployment", "StatefulSet", "DaemonSet", "Pod")]


def pod_spec(obj):
    return obj["spec"] if obj["kind"] == "Pod" else obj["spec"]["template"]["spec"]


def pod_meta(obj):
    return obj["metadata"] if obj["kind"] == "Pod" else obj["spec"]["template"]["metadata"]


def is_sidecar_image(image):
    return image.rsplit("/", 1)[-1].split(":")[0] == "sidecar"


def sidecar_pods():
    """[(path, workload, container)] for every container that runs the sidecar image."""
    out = []
    for path, obj in workloads():
        spec = pod_spec(obj)
        for c in spec.get("containers", []) + spec.get("initContainers", []):
            if is_sidecar_image(c.get("image", "")):
                out.append((path, obj, c))
    return out


def find_object(kind, name):
    for path, o in k8s_objects():
        if o.get("kind") == kind and o.get("metadata", {}).get("name") == name:
            return path, o
    return None, None


def config_arg(container):
    args = list(container.get("command", [])) + list(container.get("args", []))
    for i, a in enumerate(args):
        if a in ("-c", "--config") and i + 1 < len(args):
            return args[i + 1]
    return None


def mounted_ini(obj, container):
    """(ConfigMap name, key) of the file the container's -c names, or raises AssertionError."""
    where = f"{obj['metadata']['name']}/{container['name']}"
    path = config_arg(container)
    if not path:
        raise AssertionError(f"{where}: args have no '-c FILE'")
    spec = pod_spec(obj)
    for m in container.get("volumeMounts", []):
        mp = m["mountPath"].rstrip("/")
        if m.get("subPath"):
            if path != mp:
                continue
            rel = m["subPath"]
        elif path.startswith(mp + "/"):
            rel = path[len(mp) + 1:]
        else:
            continue
        vol = next((v for v in spec.get("volumes", []) if v["name"] == m["name"]), None)
        if vol is None:
            raise AssertionError(f"{where}: volumeMount {m['name']!r} names no volume")
        if "configMap" not in vol:
            raise AssertionError(f"{where}: volume {m['name']!r} holding {path} is not a configMap")
        cm = vol["configMap"]
        items = cm.get("items")
        if items:
            item = next((i for i in items if i["path"] == rel), None)
            if item is None:
                raise AssertionError(f"{where}: configMap volume {m['name']!r} has no item with "
                                     f"path {rel!r} (the file -c names is {path})")
            return cm["name"], item["key"]
        return cm["name"], rel
    raise AssertionError(f"{where}: no volumeMount holds {path} (the file -c names)")


def configmap_ini(obj, container):
    name, key = mounted_ini(obj, container)
    path, cm = find_object("ConfigMap", name)
    if cm is None:
        raise AssertionError(f"no ConfigMap {name!r} under deploy/ (mounted by "
                             f"{obj['metadata']['name']}/{container['name']})")
    data = cm.get("data", {})
    if key not in data:
        raise AssertionError(f"{path}: ConfigMap {name!r} has no key {key!r}")
    return f"{path}:{key}", data[key]


def ini_with_env(ini, container):
    """The ini as the container sees it: literal SIDECAR_<SECTION>_<KEY> env values win."""
    names = {f"SIDECAR_{s}_{k}".upper(): (s, k) for s in DEFAULTS for k in DEFAULTS[s]}
    merged = {s: dict(keys) for s, keys in ini.items()}
    for e in container.get("env", []):
        if e["name"] in names and "value" in e:
            s, k = names[e["name"]]
            merged.setdefault(s, {})[k] = str(e["value"])
    return merged


def effective(ini, section, key):
    return ini.get(section, {}).get(key, DEFAULTS[section][key])


def container_port(container, name_or_number):
    for p in container.get("ports", []):
        if name_or_number in (p.get("name"), p["containerPort"]):
            return p["containerPort"]
    return None


def clean_env():
    return {k: v for k, v in os.environ.items() if not k.startswith("SIDECAR_")}


def container_env(container, secret_placeholder="from-a-secret"):
    env = {}
    for e in container.get("env", []):
        if "value" in e:
            env[e["name"]] = str(e["value"])
        elif "valueFrom" in e:
            env[e["name"]] = secret_placeholder
    return env


def prestop_seconds(container):
    """Seconds the preStop hook takes (sleep N, or the sleep action); 0 when there is none."""
    hook = container.get("lifecycle", {}).get("preStop")
    if not hook:
        return 0
    if "sleep" in hook:
        return float(hook["sleep"]["seconds"])
    cmd = hook.get("exec", {}).get("command", [])
    text = " ".join(cmd)
    m = re.search(r"\bsleep\s+(\d+(?:\.\d+)?)", text)
    if not m:
        raise AssertionError(f"preStop {cmd!r}: cannot tell how long it takes (expected sleep N)")
    return float(m.group(1))


# ---- systemd ----

def unit_parse(text):
    """{section: {key: [values]}} (a key may repeat; an empty assignment is kept as '')."""
    out, section, buf = {}, None, ""
    for raw in text.splitlines():
        s = raw.strip()
        if not buf and (not s or s[0] in "#;"):
            continue
        if s.endswith("\\"):
            buf += s[:-1] + " "
            continue
        s, buf = buf + s, ""
        if s.startswith("["):
            section = s.strip("[]")
            out.setdefault(section, {})
            continue
        k, _, v = s.partition("=")
        out[section].setdefault(k.strip(), []).append(v.strip())
    return out


def systemd_seconds(text):
    total = 0.0
    for num, unit in re.findall(r"(\d+(?:\.\d+)?)\s*(ms|min|s|m|h)?", text):
        total += float(num) * {"ms": 1e-3, "": 1, "s": 1, "min": 60, "m": 60, "h": 3600}[unit]
    return total


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def need_binary(test):
    if not os.access(SIDECAR_BIN, os.X_OK):
        test.fail(f"{SIDECAR_BIN}: no sidecar binary (build it with make, or pass its path / "
                  f"set SIDECAR_BIN)")


# =====================================================================================

class YamlFiles(unittest.TestCase):
    def test_every_yaml_file_parses_into_kubernetes_objects(self):
        files = yaml_files()
        self.assertTrue(files, "no YAML file under deploy/")
        for path in files:
            rel = os.path.relpath(path, REPO)
            try:
                docs = [d for d in yaml.safe_load_all(read(path)) if d is not None]
            except yaml.YAMLError as e:
                self.fail(f"{rel}: not valid YAML: {e}")
            self.assertTrue(docs, f"{rel}: no document")
            for d in docs:
                self.assertIsInstance(d, dict, f"{rel}: a document is not a mapping")
                for field in ("apiVersion", "kind"):
                    self.assertIn(field, d, f"{rel}: a document has no {field}")
                self.assertTrue(d.get("metadata", {}).get("name"),
                                f"{rel}: {d['kind']} has no metadata.name")

    def test_object_names_are_unique_per_kind(self):
        seen = {}
        for path, o in k8s_objects():
            key = (o["kind"], o["metadata"]["name"])
            self.assertNotIn(key, seen, f"{path}: {key[0]} {key[1]!r} also defined in "
                                        f"{seen.get(key)}")
            seen[key] = path

    def test_workload_selectors_match_their_pod_labels(self):
        for path, o in workloads():
            if o["kind"] == "Pod":
                continue
            sel = o["spec"]["selector"]["matchLabels"]
            labels = pod_meta(o).get("labels", {})
            for k, v in sel.items():
                self.assertEqual(labels.get(k), v, f"{path}: {o['metadata']['name']}: selector "
                                 f"{k}={v} does not match the pod template's labels {labels}")


    def test_pod_and_container_fields_are_known(self):
        for path, o in workloads():
            spec = pod_spec(o)
            unknown = set(spec) - K8S_FIELDS["PodSpec"]
            self.assertFalse(unknown, f"{path}: {o['metadata']['name']}: unknown pod spec "
                                      f"fields {sorted(unknown)}")
            for c in spec.get("containers", []) + spec.get("initContainers", []):
                where = f"{path}: container {c.get('name')}"
                unknown = set(c) - K8S_FIELDS["Container"]
                self.assertFalse(unknown, f"{where}: unknown fields {sorted(unknown)}")
                for probe in ("livenessProbe", "readinessProbe", "startupProbe"):
                    unknown = set(c.get(probe, {})) - K8S_FIELDS["Probe"]
                    self.assertFalse(unknown, f"{where}: {probe}: unknown fields {sorted(unknown)}")
                unknown = set(c.get("securityContext", {})) - K8S_FIELDS["SecurityContext"]
                self.assertFalse(unknown, f"{where}: securityContext: unknown fields "
                                          f"{sorted(unknown)}")


class Dockerfile(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.text = read(DOCKERFILE)
        cls.stages = dockerfile_stages(cls.text)

    def stage_args(self, stage, ins):
        return [a for i, a in stage["ins"] if i == ins]

    def test_stages_are_debian_bookworm_slim(self):
        self.assertGreaterEqual(len(self.stages), 2, "deploy/Dockerfile: expected a build stage "
                                "and a runtime stage")
        for s in self.stages:
            self.assertEqual(s["from"], "debian:bookworm-slim",
                             f"deploy/Dockerfile: FROM {s['from']} (expected debian:bookworm-slim)")
        self.assertEqual(self.stages[0]["name"], "build",
                         "deploy/Dockerfile: the first stage must be named 'build'")

    def test_build_stage_installs_what_make_needs_and_no_test_tools(self):
        pkgs = set(apt_packages(self.stages[0]))
        want = set(install_deps_list("run_pkgs")) | {"libc6-dev"}
        self.assertFalse(want - pkgs, "deploy/Dockerfile build stage: missing "
                         f"{sorted(want - pkgs)} (deploy/install-deps.sh's run list, plus "
                         "libc6-dev which gcc only recommends)")
        self.assertFalse(pkgs & TEST_ONLY_PACKAGES, f"deploy/Dockerfile build stage installs test "
                         f"tools {sorted(pkgs & TEST_ONLY_PACKAGES)}")

    def test_build_stage_runs_make_sidecar(self):
        runs = " ".join(self.stage_args(self.stages[0], "RUN"))
        self.assertRegex(runs, r"\bmake\b[^&;]*\bsidecar\b",
                         "deploy/Dockerfile: the build stage does not run 'make ... sidecar'")
        self.assertRegex(read(os.path.join(REPO, "Makefile")), r"(?m)^sidecar:",
                         "Makefile: no 'sidecar' target")

    def test_runtime_stage_has_only_runtime_libraries(self):
        pkgs = apt_packages(self.stages[-1])
        self.assertTrue(pkgs, "deploy/Dockerfile runtime stage installs no package")
        bad = [p for p in pkgs if p.endswith("-dev") or p in ("gcc", "make", "pkg-config")
               or p in TEST_ONLY_PACKAGES]
        self.assertFalse(bad, f"deploy/Dockerfile runtime stage installs build/test packages {bad}")

    def test_runtime_packages_are_the_binarys_libraries(self):
        need_binary(self)
        if not shutil.which("ldd") or not shutil.which("dpkg"):
            note("ldd/dpkg not available: the runtime packages were not compared with the "
                 "binary's libraries")
            self.skipTest("ldd/dpkg not available")
        out = subprocess.run(["ldd", SIDECAR_BIN], capture_output=True, text=True,
                             check=True).stdout
        owners = set()
        for lib in re.findall(r"=>\s+(/\S+)", out):
            r = subprocess.run(["dpkg", "-S", os.path.realpath(lib)], capture_output=True,
                               text=True)
            if r.returncode != 0:
                r = subprocess.run(["dpkg", "-S", lib], capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{lib}: no Debian package owns it")
            owners.add(r.stdout.split(":")[0])
        owners -= {"libc6"}        # in every Debian image
        pkgs = set(apt_packages(self.stages[-1]))
        self.assertEqual(owners - pkgs, set(), f"deploy/Dockerfile runtime stage lacks the "
                         f"packages of the binary's libraries {sorted(owners - pkgs)}")
        self.assertEqual(pkgs - owners, set(), f"deploy/Dockerfile runtime stage installs "
                         f"{sorted(pkgs - owners)}, which the binary does not link")

    def test_runtime_packages_exist_in_bookworm(self):
        pkgs = apt_packages(self.stages[0]) + apt_packages(self.stages[-1])
        release = read("/etc/debian_version").strip() if os.path.exists("/etc/debian_version") \
            else ""
        if not shutil.which("apt-cache") or not release.startswith("12"):
            note(f"not a Debian 12 machine with apt-cache ({release or 'no /etc/debian_version'}):"
                 " the image's package names were not looked up")
            self.skipTest("no Debian 12 apt-cache")
        out = subprocess.run(["apt-cache", "policy", *pkgs], capture_output=True,
                             text=True).stdout
        candidates = dict(re.findall(r"(?m)^(\S+):\n\s+Installed:.*\n\s+Candidate:\s*(\S+)", out))
        for p in pkgs:
            self.assertTrue(candidates.get(p, "(none)") != "(none)",
                            f"deploy/Dockerfile installs {p!r}, which apt-cache policy does not "
                            f"know on this Debian 12 machine")

    def test_copy_sources_exist_and_are_in_the_build_context(self):
        ignore = [l.strip() for l in read(DOCKERIGNORE).splitlines()
                  if l.strip() and not l.startswith("#")]
        self.assertEqual(ignore[0], "*", "deploy/Dockerfile.dockerignore: expected an allow-list "
                         "starting with '*'")
        allowed = [l[1:].rstrip("/") for l in ignore[1:] if l.startswith("!")]
        for s in self.stages:
            for args in self.stage_args(s, "COPY"):
                if "--from=" in args:
                    continue
                srcs = [w for w in args.split() if not w.startswith("--")][:-1]
                for src in srcs:
                    src = src.rstrip("/")
                    self.assertTrue(os.path.exists(os.path.join(REPO, src)),
                                    f"deploy/Dockerfile: COPY {src}: no such file in the "
                                    "repository")
                    self.assertTrue(any(src == a or src.startswith(a + "/") for a in allowed),
                                    f"deploy/Dockerfile: COPY {src} is not allowed by "
                                    f"deploy/Dockerfile.dockerignore")

    def test_copy_from_build_takes_what_the_build_stage_makes(self):
        build = " ".join(self.stage_args(self.stages[0], "RUN"))
        workdir = (self.stage_args(self.stages[0], "WORKDIR") or ["/"])[-1]
        copies = [a for a in self.stage_args(self.stages[-1], "COPY") if "--from=build" in a]
        self.assertTrue(copies, "deploy/Dockerfile: the runtime stage copies nothing from 'build'")
        for args in copies:
            src = [w for w in args.split() if not w.startswith("--")][0]
            rel = src[len(workdir.rstrip("/")) + 1:] if src.startswith(workdir) else None
            made = (rel == "sidecar" and "make" in build) or src in build
            self.assertTrue(made, f"deploy/Dockerfile: COPY --from=build {src}: the build stage "
                                  f"does not produce it")

    def test_runs_as_a_non_root_user(self):
        users = self.stage_args(self.stages[-1], "USER")
        self.assertTrue(users, "deploy/Dockerfile: the runtime stage has no USER")
        user = users[-1].split(":")[0]
        self.assertNotIn(user, ("root", "0"), "deploy/Dockerfile: USER is root")
        self.assertTrue(user.isdigit(), "deploy/Dockerfile: USER should be numeric (Kubernetes "
                        "runAsNonRoot can only verify a numeric uid)")
        runs = " ".join(self.stage_args(self.stages[-1], "RUN"))
        self.assertRegex(runs, rf"useradd\b[^&]*--uid {user}\b",
                         f"deploy/Dockerfile: no useradd creates uid {user}")

    def test_healthcheck_runs_a_script_copied_into_the_image(self):
        hc = self.stage_args(self.stages[-1], "HEALTHCHECK")
        self.assertTrue(hc, "deploy/Dockerfile: the runtime stage has no HEALTHCHECK")
        m = re.search(r"\bCMD\s+(.*)$", hc[-1])
        self.assertTrue(m, "deploy/Dockerfile: HEALTHCHECK without CMD")
        for opt in ("--interval", "--timeout"):
            self.assertIn(opt, hc[-1], f"deploy/Dockerfile: HEALTHCHECK without {opt}")
        cmd = exec_form(m.group(1))[0]
        src = None
        for args in self.stage_args(self.stages[-1], "COPY"):
            words = [w for w in args.split() if not w.startswith("--")]
            if words[-1] == cmd and "--from=" not in args:
                src = words[0]
        self.assertTrue(src, f"deploy/Dockerfile: HEALTHCHECK runs {cmd}, which no COPY from "
                             f"the repository puts there")
        self.assertTrue(os.access(os.path.join(REPO, src), os.X_OK),
                        f"{src}: not executable (the image keeps the file's mode)")

    def test_exposes_the_resp_and_admin_ports_of_the_images_ini(self):
        ini = ini_dict(self.image_ini(), "image sidecar.ini")
        exposed = {int(p.split("/")[0]) for a in self.stage_args(self.stages[-1], "EXPOSE")
                   for p in a.split()}
        resp = addr_port(ini["server"]["listen"])
        self.assertIn(resp, exposed, f"deploy/Dockerfile: EXPOSE lacks the RESP port {resp}")
        self.assertTrue(ini["admin"]["listen"], "image sidecar.ini: [admin] listen is off")
        admin = addr_port(ini["admin"]["listen"])
        self.assertIn(admin, exposed, f"deploy/Dockerfile: EXPOSE lacks the admin port {admin}")

    def image_ini(self):
        """sidecar.ini after the build stage's sed expressions, run with the real sed."""
        run = next((a for a in self.stage_args(self.stages[0], "RUN") if "sed " in a), None)
        self.assertTrue(run, "deploy/Dockerfile: the build stage does not sed sidecar.ini")
        exprs = re.findall(r"-e\s+'([^']*)'", run)
        self.assertTrue(exprs, "deploy/Dockerfile: no sed -e '...' expressions")
        args = ["sed"] + [x for e in exprs for x in ("-e", e)] + [os.path.join(REPO, "sidecar.ini")]
        return subprocess.run(args, capture_output=True, text=True, check=True).stdout

    def test_image_ini_changes_only_the_two_listen_lines_and_is_valid(self):
        before = read(os.path.join(REPO, "sidecar.ini")).splitlines()
        after = self.image_ini().splitlines()
        self.assertEqual(len(before), len(after))
        changed = [(a, b) for a, b in zip(before, after) if a != b]
        self.assertEqual([b for _, b in changed],
                         ["listen = 0.0.0.0:6379", "listen = 0.0.0.0:9121"],
                         "deploy/Dockerfile: the sed expressions no longer turn sidecar.ini's "
                         "[server] and [admin] listen lines into the image's (did sidecar.ini's "
                         f"defaults change?); lines changed: {changed}")
        need_binary(self)
        with tempfile.NamedTemporaryFile("w", suffix=".ini") as f:
            f.write("\n".join(after) + "\n")
            f.flush()

            def check(extra):
                return subprocess.run([SIDECAR_BIN, "--check-config", "-c", f.name],
                                      env=dict(clean_env(), **extra), capture_output=True,
                                      text=True)
            # 0.0.0.0 without a password: protected mode refuses it until the user chooses
            r = check({})
            self.assertEqual(r.returncode, 1, "the image's ini starts without a password")
            self.assertIn("protected mode", r.stderr)
            for extra in ({"SIDECAR_SERVER_REQUIREPASS": "x"},
                          {"SIDECAR_SERVER_PROTECTED_MODE": "no"}):
                r = check(extra)
                self.assertEqual(r.returncode, 0, f"the image's sidecar.ini is invalid with "
                                                  f"{extra}: {r.stderr}")
        # The entry point reads the file the ini is copied to.
        dest = next(a.split()[-1] for a in self.stage_args(self.stages[-1], "COPY")
                    if "sidecar.ini" in a)
        argv = exec_form(self.stage_args(self.stages[-1], "ENTRYPOINT")[-1]) + \
            exec_form(self.stage_args(self.stages[-1], "CMD")[-1])
        self.assertIn(dest, argv, f"deploy/Dockerfile: ENTRYPOINT/CMD {argv} do not read {dest}")

    def test_version_label_and_documented_tag_match_the_source(self):
        labels = " ".join(self.stage_args(self.stages[-1], "LABEL"))
        m = re.search(r'org\.opencontainers\.image\.version="([^"]+)"', labels)
        self.assertTrue(m, "deploy/Dockerfile: no org.opencontainers.image.version LABEL")
        self.assertEqual(m.group(1), SIDECAR_VERSION, "deploy/Dockerfile: the version LABEL is "
                         f"not proxy/server.h's SIDECAR_VERSION {SIDECAR_VERSION}")
        tags = re.findall(r"-t\s+(\S+)", self.text)
        self.assertTrue(tags, "deploy/Dockerfile: the header does not show 'docker build -t ...'")
        for t in tags:
            self.assertEqual(t, f"sidecar:{SIDECAR_VERSION}", f"deploy/Dockerfile documents tag "
                             f"{t}, expected sidecar:{SIDECAR_VERSION}")


class HealthcheckScript(unittest.TestCase):
    """deploy/docker-healthcheck.sh against a real sidecar on a free loopback port."""

    SCRIPT = os.path.join(DEPLOY, "docker-healthcheck.sh")

    @classmethod
    def setUpClass(cls):
        cls.procs, cls.tmp = [], tempfile.mkdtemp(prefix="deploy-test-")

    @classmethod
    def tearDownClass(cls):
        for p in cls.procs:
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, extra_env=None):
        need_binary(self)
        port = free_port()
        env = clean_env()
        env.update(extra_env or {})
        log = open(os.path.join(self.tmp, f"sidecar-{port}.log"), "w")
        p = subprocess.Popen([SIDECAR_BIN, "--port", str(port)], env=env, stdout=log,
                             stderr=log)
        log.close()
        self.procs.append(p)
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return port
            except OSError:
                if p.poll() is not None:
                    break
                time.sleep(0.05)
        self.fail(f"the sidecar did not start on port {port}")

    def check(self, args=(), env=None):
        e = clean_env()
        e["HEALTHCHECK_INI"] = os.path.join(self.tmp, "none.ini")
        e.update(env or {})
        return subprocess.run(["bash", self.SCRIPT, *args], env=e, capture_output=True,
                              text=True, timeout=10)

    def test_healthy_when_the_sidecar_answers_pong(self):
        port = self.start()
        r = self.check([f"127.0.0.1:{port}"])
        self.assertEqual(r.returncode, 0, f"health check failed on a running sidecar: {r.stderr}")

    def test_address_from_the_ini_file_and_from_the_environment(self):
        port = self.start()
        ini = os.path.join(self.tmp, "hc.ini")
        with open(ini, "w") as f:
            f.write(f'; comment\n[server]\nlisten = "0.0.0.0:{port}" ; wildcard, probed on '
                    f'loopback\n[admin]\nlisten = 0.0.0.0:1\n')
        r = self.check(env={"HEALTHCHECK_INI": ini})
        self.assertEqual(r.returncode, 0, f"health check did not find the port in {ini}: "
                                          f"{r.stderr}")
        r = self.check(env={"SIDECAR_SERVER_LISTEN": f"0.0.0.0:{port}, 127.0.0.1:1"})
        self.assertEqual(r.returncode, 0, f"health check ignored SIDECAR_SERVER_LISTEN: {r.stderr}")

    def test_healthy_with_requirepass(self):
        port = self.start({"SIDECAR_SERVER_REQUIREPASS": "secret"})
        r = self.check([f"127.0.0.1:{port}"])
        self.assertEqual(r.returncode, 0, f"-NOAUTH must count as alive: {r.stderr}")

    def test_unhealthy_when_nothing_listens(self):
        r = self.check([f"127.0.0.1:{free_port()}"])
        self.assertEqual(r.returncode, 1, "health check passed with nothing listening")
        self.assertIn("cannot connect", r.stderr)


class Kubernetes(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.pods = sidecar_pods()

    def each(self):
        self.assertTrue(self.pods, "no workload under deploy/ runs the sidecar image")
        for path, obj, c in self.pods:
            text_where, text = configmap_ini(obj, c)
            yield path, obj, c, ini_with_env(ini_dict(text, text_where), c), text_where, text

    def test_sidecar_image_is_the_one_the_dockerfile_builds(self):
        for path, obj, c, *_ in self.each():
            tag = c["image"].rsplit("/", 1)[-1]
            self.assertEqual(tag, f"sidecar:{SIDECAR_VERSION}", f"{path}: container "
                             f"{c['name']} runs {c['image']}; deploy/Dockerfile builds "
                             f"sidecar:{SIDECAR_VERSION}")

    def test_the_ini_named_by_args_is_the_mounted_configmap(self):
        for path, obj, c in self.pods:
            try:
                configmap_ini(obj, c)
            except AssertionError as e:
                self.fail(f"{path}: {e}")
            mount = next(m for m in c["volumeMounts"] if config_arg(c).startswith(
                m["mountPath"].rstrip("/")))
            self.assertTrue(mount.get("readOnly"), f"{path}: the ConfigMap mount should be "
                                                   "readOnly")

    def test_configmap_ini_keys_are_keys_of_sidecar_ini(self):
        for path, obj, c, ini, where, text in self.each():
            for section, key, _, line in ini_parse(text, where):
                self.assertTrue(section in DEFAULTS, f"{where}:{line}: unknown section "
                                                     f"[{section}]")
                self.assertTrue(key in DEFAULTS[section], f"{where}:{line}: [{section}] {key} is "
                                                          "not a key of sidecar.ini")

    def test_configmap_ini_passes_check_config_with_the_containers_env(self):
        need_binary(self)
        for path, obj, c, ini, where, text in self.each():
            with tempfile.NamedTemporaryFile("w", suffix=".ini") as f:
                f.write(text)
                f.flush()
                env = clean_env()
                env.update({k: v for k, v in container_env(c).items()
                            if k.startswith("SIDECAR_")})
                r = subprocess.run([SIDECAR_BIN, "--check-config", "-c", f.name], env=env,
                                   capture_output=True, text=True)
            self.assertEqual(r.returncode, 0, f"{where}: sidecar --check-config refuses it: "
                             f"{(r.stderr or r.stdout).strip().replace(f.name, where)}")

    def test_env_overrides_name_keys_of_sidecar_ini(self):
        names = {f"SIDECAR_{s}_{k}".upper(): (s, k) for s, keys in DEFAULTS.items() for k in keys}
        for path, obj, c in self.pods:
            for e in c.get("env", []):
                if e["name"].startswith("SIDECAR_"):
                    self.assertTrue(e["name"] in names, f"{path}: env {e['name']} overrides no "
                                    "key of sidecar.ini (SIDECAR_<SECTION>_<KEY>)")

    def test_upstream_password_comes_from_a_secret(self):
        for path, obj, c, ini, where, _ in self.each():
            if not effective(ini, "upstream", "host") and not effective(ini, "upstream",
                                                                         "unixsocket"):
                continue
            self.assertFalse(ini.get("upstream", {}).get("password"),
                             f"{where}: a password in the ConfigMap; use a Secret")
            env = {e["name"]: e for e in c.get("env", [])}
            e = env.get("SIDECAR_UPSTREAM_PASSWORD")
            self.assertTrue(e, f"{path}: container {c['name']} has no SIDECAR_UPSTREAM_PASSWORD")
            ref = e.get("valueFrom", {}).get("secretKeyRef")
            self.assertTrue(ref, f"{path}: SIDECAR_UPSTREAM_PASSWORD is not a secretKeyRef")
            spath, secret = find_object("Secret", ref["name"])
            self.assertTrue(secret, f"{path}: SIDECAR_UPSTREAM_PASSWORD refers to Secret "
                                    f"{ref['name']!r}, which deploy/ does not define")
            keys = set(secret.get("data", {})) | set(secret.get("stringData", {}))
            self.assertIn(ref["key"], keys, f"{spath}: Secret {ref['name']!r} has no key "
                                            f"{ref['key']!r}")

    def test_upstream_host_is_a_service_of_the_example(self):
        for path, obj, c, ini, where, _ in self.each():
            host = effective(ini, "upstream", "host")
            if not host:
                continue
            name = host.split(".")[0]
            spath, svc = find_object("Service", name)
            self.assertTrue(svc, f"{where}: [upstream] host {host}: no Service {name!r} under "
                                 "deploy/kubernetes")
            port = int(effective(ini, "upstream", "port"))
            self.assertIn(port, [p["port"] for p in svc["spec"]["ports"]],
                          f"{spath}: Service {name} does not serve port {port}")

    def test_container_ports_match_the_listen_addresses(self):
        for path, obj, c, ini, where, _ in self.each():
            resp = addr_port(effective(ini, "server", "listen"))
            self.assertEqual(container_port(c, "resp"), resp, f"{path}: containerPort 'resp' is "
                             f"not [server] listen's port {resp} ({where})")
            admin = effective(ini, "admin", "listen")
            self.assertTrue(admin, f"{where}: [admin] listen is off; the probes need it")
            self.assertFalse(admin.startswith(("127.", "[::1]", "localhost")),
                             f"{where}: [admin] listen {admin} is loopback; the kubelet and "
                             "Prometheus come through the pod IP")
            self.assertEqual(container_port(c, "admin"), addr_port(admin),
                             f"{path}: containerPort 'admin' is not [admin] listen's port "
                             f"{addr_port(admin)} ({where})")

    def test_probes_use_the_admin_port(self):
        for path, obj, c, ini, where, _ in self.each():
            admin = addr_port(effective(ini, "admin", "listen"))
            for probe, want in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
                p = c.get(probe)
                self.assertTrue(p and "httpGet" in p, f"{path}: {c['name']} has no httpGet {probe}")
                self.assertEqual(p["httpGet"]["path"], want, f"{path}: {probe} path")
                self.assertEqual(container_port(c, p["httpGet"]["port"]), admin,
                                 f"{path}: {probe} port {p['httpGet']['port']!r} is not the admin "
                                 f"port {admin}")

    def test_termination_grace_covers_prestop_and_the_drain(self):
        for path, obj, c, *_ in self.each():
            spec = pod_spec(obj)
            self.assertIn("preStop", c.get("lifecycle", {}), f"{path}: {c['name']} has no preStop")
            grace = spec.get("terminationGracePeriodSeconds", 30)
            need = prestop_seconds(c) + SHUTDOWN_GRACE_S
            self.assertGreater(grace, need, f"{path}: terminationGracePeriodSeconds {grace} <= "
                               f"preStop {prestop_seconds(c)} s + drain {SHUTDOWN_GRACE_S} s "
                               "(SERVER_SHUTDOWN_GRACE_MS)")

    def test_resources_are_sized_for_max_memory(self):
        for path, obj, c, ini, where, _ in self.each():
            res = c.get("resources", {})
            for kind in ("requests", "limits"):
                for r in ("cpu", "memory"):
                    self.assertIn(r, res.get(kind, {}), f"{path}: {c['name']} has no "
                                                        f"resources.{kind}.{r}")
            mm = mem_bytes(effective(ini, "cache", "max_memory"))
            self.assertGreater(mm, 0, f"{where}: max_memory 0 (unbounded) cannot be sized")
            req = quantity(res["requests"]["memory"])
            lim = quantity(res["limits"]["memory"])
            mm_text = effective(ini, "cache", "max_memory")
            self.assertGreaterEqual(req, HEAP_FACTOR * mm + REQUEST_OVERHEAD, f"{path}: memory "
                                    f"request {res['requests']['memory']} < 2 x max_memory "
                                    f"({mm_text}) + 32Mi, the measured resident size of a "
                                    "fragmented store")
            self.assertGreaterEqual(lim, HEAP_FACTOR * mm + LIMIT_OVERHEAD, f"{path}: memory "
                                    f"limit {res['limits']['memory']} < 2 x max_memory "
                                    f"({mm_text}) + 64Mi, the measured peak")
            self.assertGreaterEqual(lim, req, f"{path}: memory limit below the request")

    def test_prometheus_scrape_annotations(self):
        for path, obj, c, ini, where, _ in self.each():
            ann = pod_meta(obj).get("annotations", {})
            admin = addr_port(effective(ini, "admin", "listen"))
            self.assertEqual(ann.get("prometheus.io/scrape"), "true",
                             f"{path}: pod annotation prometheus.io/scrape is not \"true\"")
            self.assertEqual(ann.get("prometheus.io/port"), str(admin),
                             f"{path}: pod annotation prometheus.io/port is not the admin port")
            self.assertEqual(ann.get("prometheus.io/path"), "/metrics",
                             f"{path}: pod annotation prometheus.io/path is not /metrics")

    def test_podmonitors_scrape_the_admin_port(self):
        for mpath, mon in k8s_objects():
            if mon["kind"] not in ("PodMonitor", "ServiceMonitor"):
                continue
            sel = mon["spec"]["selector"]["matchLabels"]
            pods = [(p, o, c) for p, o, c in self.pods
                    if all(pod_meta(o).get("labels", {}).get(k) == v for k, v in sel.items())]
            self.assertTrue(pods, f"{mpath}: selector {sel} matches no pod running the sidecar")
            eps = mon["spec"].get("podMetricsEndpoints") or mon["spec"].get("endpoints")
            for ep in eps:
                self.assertEqual(ep.get("path"), "/metrics", f"{mpath}: path")
                for p, o, c in pods:
                    self.assertEqual(container_port(c, "admin"), container_port(c, ep["port"]),
                                     f"{mpath}: port {ep['port']!r} is not {p}'s admin port")

    def test_security_context_matches_the_image_user(self):
        uid = image_uid()
        for path, obj, c, *_ in self.each():
            sc = c.get("securityContext", {})
            self.assertTrue(sc.get("runAsNonRoot"), f"{path}: {c['name']}: runAsNonRoot")
            self.assertEqual(sc.get("runAsUser"), uid, f"{path}: {c['name']}: runAsUser is not "
                             f"the image's uid {uid}")
            self.assertFalse(sc.get("allowPrivilegeEscalation", True),
                             f"{path}: {c['name']}: allowPrivilegeEscalation")
            self.assertTrue(sc.get("readOnlyRootFilesystem"),
                            f"{path}: {c['name']}: readOnlyRootFilesystem")


class PodOnLoopback(unittest.TestCase):
    """The sidecar container as the manifests describe it (the ConfigMap's ini, the container's
    env with the Secret's value), run against a real redis-server: the probes' and Prometheus's
    paths answer, the password from the Secret is accepted, SIGTERM exits within the pod's
    budget. Every address is moved to a free 127.0.0.1 port through SIDECAR_* overrides."""

    @classmethod
    def setUpClass(cls):
        cls.procs, cls.tmp = [], tempfile.mkdtemp(prefix="deploy-pod-")

    @classmethod
    def tearDownClass(cls):
        for p in reversed(cls.procs):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    p.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    p.kill()
                    p.wait()
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def spawn(self, argv, env, name):
        with open(os.path.join(self.tmp, name + ".log"), "w") as log:
            p = subprocess.Popen(argv, env=env, stdout=log, stderr=log)
        self.procs.append(p)
        return p

    def wait_port(self, port, proc):
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                return
            except OSError:
                if proc.poll() is not None:
                    break
                time.sleep(0.05)
        self.fail(f"nothing listens on 127.0.0.1:{port} (logs in {self.tmp})")

    def http_get(self, port, path):
        import http.client
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
        try:
            conn.request("GET", path)
            r = conn.getresponse()
            return r.status, r.read().decode(errors="replace")
        finally:
            conn.close()

    def resp(self, port, *args):
        with socket.create_connection(("127.0.0.1", port), timeout=2) as s:
            s.sendall(f"*{len(args)}\r\n".encode() + b"".join(
                f"${len(a)}\r\n{a}\r\n".encode() for a in args))
            return s.recv(4096).decode(errors="replace")

    def test_probes_metrics_secret_and_drain(self):
        need_binary(self)
        with open(SIDECAR_BIN, "rb") as f:
            if b"/readyz" not in f.read():
                note(f"{SIDECAR_BIN} has no admin HTTP port yet: the pod was not run")
                self.skipTest("no admin HTTP port in this binary")
        if not shutil.which("redis-server"):
            note("redis-server not available: the pod was not run against an upstream")
            self.skipTest("no redis-server")
        path, obj, c = sidecar_pods()[0]
        _, text = configmap_ini(obj, c)
        env = clean_env()
        for e in c.get("env", []):
            if "value" in e:
                env[e["name"]] = str(e["value"])
            elif "secretKeyRef" in e.get("valueFrom", {}):
                ref = e["valueFrom"]["secretKeyRef"]
                _, secret = find_object("Secret", ref["name"])
                env[e["name"]] = secret["stringData"][ref["key"]]
        password = env.get("SIDECAR_UPSTREAM_PASSWORD", "")
        up, resp_port, admin_port = free_port(), free_port(), free_port()
        redis = self.spawn(["redis-server", "--port", str(up), "--bind", "127.0.0.1", "--save",
                            "", "--appendonly", "no"] +
                           (["--requirepass", password] if password else []),
                           clean_env(), "redis")
        self.wait_port(up, redis)
        env.update({"SIDECAR_SERVER_LISTEN": f"127.0.0.1:{resp_port}",
                    "SIDECAR_ADMIN_LISTEN": f"127.0.0.1:{admin_port}",
                    "SIDECAR_UPSTREAM_HOST": "127.0.0.1", "SIDECAR_UPSTREAM_PORT": str(up)})
        ini = os.path.join(self.tmp, "sidecar.ini")
        with open(ini, "w") as f:
            f.write(text)
        sidecar = self.spawn([SIDECAR_BIN, "-c", ini], env, "sidecar")
        self.wait_port(admin_port, sidecar)

        for probe in ("livenessProbe", "readinessProbe"):
            want = c[probe]["httpGet"]["path"]
            status, body = 0, ""
            for _ in range(50):        # readiness waits for the upstream link and tracking
                status, body = self.http_get(admin_port, want)
                if status == 200:
                    break
                time.sleep(0.1)
            self.assertEqual(status, 200, f"{path}: {probe} GET {want}: {status} {body.strip()}")
        mpath = pod_meta(obj)["annotations"]["prometheus.io/path"]
        status, body = self.http_get(admin_port, mpath)
        self.assertEqual(status, 200, f"GET {mpath}: {status}")
        self.assertIn("# TYPE ", body, f"GET {mpath}: not Prometheus text")

        self.assertEqual(self.resp(resp_port, "SET", "deploy:k", "v"), "+OK\r\n",
                         "SET through the sidecar (upstream AUTH with the Secret's password)")
        self.assertEqual(self.resp(resp_port, "GET", "deploy:k"), "$1\r\nv\r\n")
        r = subprocess.run(["bash", os.path.join(DEPLOY, "docker-healthcheck.sh"),
                            f"127.0.0.1:{resp_port}"], capture_output=True, text=True, timeout=10)
        self.assertEqual(r.returncode, 0, f"docker-healthcheck.sh: {r.stderr}")

        budget = pod_spec(obj).get("terminationGracePeriodSeconds", 30) - prestop_seconds(c)
        t0 = time.monotonic()
        sidecar.send_signal(signal.SIGTERM)
        try:
            rc = sidecar.wait(timeout=budget)
        except subprocess.TimeoutExpired:
            self.fail(f"the sidecar did not exit within {budget} s of SIGTERM (the pod's "
                      "terminationGracePeriodSeconds minus preStop)")
        self.assertEqual(rc, 0, "exit status after SIGTERM")
        self.assertLess(time.monotonic() - t0, SHUTDOWN_GRACE_S + 1)


class Systemd(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls.unit = unit_parse(read(UNIT))
        cls.svc = cls.unit.get("Service", {})

    def one(self, key):
        v = self.svc.get(key)
        self.assertTrue(v, f"deploy/systemd/sidecar.service: no {key}=")
        return v[-1]

    def test_service_basics(self):
        self.assertIn(self.one("Type"), ("simple", "notify"), "sidecar.service: Type")
        argv = shlex.split(self.one("ExecStart"))
        self.assertTrue(argv[0].endswith("/sidecar"), f"sidecar.service: ExecStart {argv}")
        self.assertEqual(argv[1:], ["-c", "/etc/sidecar/sidecar.ini"],
                         "sidecar.service: ExecStart must read /etc/sidecar/sidecar.ini")
        self.assertEqual(self.one("Restart"), "on-failure", "sidecar.service: Restart")
        self.assertEqual(self.one("KillSignal"), "SIGTERM", "sidecar.service: KillSignal")
        self.assertIn("WantedBy", self.unit.get("Install", {}), "sidecar.service: no [Install]")

    def test_dedicated_user_defined_by_sysusers(self):
        user = self.one("User")
        self.assertNotIn(user, ("root", "0"), "sidecar.service: User is root")
        self.assertRegex(read(SYSUSERS), rf"(?m)^u\s+{re.escape(user)}\s",
                         f"deploy/systemd/sidecar.sysusers.conf does not create user {user}")

    def test_stop_timeout_covers_the_drain(self):
        t = systemd_seconds(self.one("TimeoutStopSec"))
        self.assertGreater(t, SHUTDOWN_GRACE_S, f"sidecar.service: TimeoutStopSec {t} s <= the "
                           f"drain after SIGTERM ({SHUTDOWN_GRACE_S} s)")

    def test_limit_nofile_fits_maxclients(self):
        need = 2 * int(DEFAULTS["server"]["maxclients"]) + 128
        n = int(self.one("LimitNOFILE").split(":")[-1])
        self.assertGreaterEqual(n, need, f"sidecar.service: LimitNOFILE {n} < 2 x maxclients "
                                f"({DEFAULTS['server']['maxclients']}) + 128")

    def test_hardening(self):
        for key, want in UNIT_HARDENING.items():
            self.assertTrue(key in self.svc, f"sidecar.service: no {key}=")
            if want is not None:
                self.assertEqual(self.svc[key][-1], want, f"sidecar.service: {key}")
        fams = set(" ".join(self.svc.get("RestrictAddressFamilies", [])).split())
        self.assertEqual(fams, {"AF_INET", "AF_INET6", "AF_UNIX"},
                         "sidecar.service: RestrictAddressFamilies")
        self.assertIn("@system-service", self.svc.get("SystemCallFilter", []),
                      "sidecar.service: SystemCallFilter=@system-service")

    def verify_copy(self, tmp):
        """The unit with ExecStart pointing at the built binary (verify wants an executable)."""
        need_binary(self)
        path = os.path.join(tmp, "sidecar.service")
        with open(path, "w") as f:
            f.write(read(UNIT).replace("/usr/local/bin/sidecar", SIDECAR_BIN))
        return path

    def test_systemd_analyze_verify(self):
        if not shutil.which("systemd-analyze"):
            note("systemd-analyze not available: sidecar.service was not verified")
            self.skipTest("no systemd-analyze")
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(["systemd-analyze", "verify", self.verify_copy(tmp)],
                               capture_output=True, text=True)
        self.assertEqual(r.returncode, 0, f"systemd-analyze verify: {r.stderr.strip()}")
        self.assertNotIn("sidecar.service:", r.stderr,
                         f"systemd-analyze verify warns: {r.stderr.strip()}")

    def test_systemd_analyze_security_exposure(self):
        if not shutil.which("systemd-analyze"):
            note("systemd-analyze not available: sidecar.service's exposure was not rated")
            self.skipTest("no systemd-analyze")
        with tempfile.TemporaryDirectory() as tmp:
            r = subprocess.run(["systemd-analyze", "security", "--offline=yes",
                                self.verify_copy(tmp)], capture_output=True, text=True)
        m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
        if r.returncode != 0 and not m:
            note(f"systemd-analyze security --offline unsupported here: {r.stderr.strip()[:80]}")
            self.skipTest("no offline security analysis")
        self.assertTrue(m, f"systemd-analyze security: no overall exposure in {r.stdout[-200:]}")
        self.assertLessEqual(float(m.group(1)), 2.0, "sidecar.service: exposure level "
                             f"{m.group(1)} (systemd-analyze security); hardening was lost")


if __name__ == "__main__":
    if len(sys.argv) > 1 and not sys.argv[1].startswith("-"):
        SIDECAR_BIN = os.path.abspath(sys.argv.pop(1))
    unittest.main(verbosity=int(os.environ.get("DEPLOY_TEST_VERBOSITY", "1")))
