# Shared by scripts/build-components: the pinned toolchains of operators written in Python
# (componentize-py, with pytest for their native tests) and JavaScript (componentize-js, with
# rolldown to bundle a module with the SDK; node's own test runner), installed outside the
# clone (scripts/lib/tools.sh). Source it; it defines functions only. componentize-py carries
# CPython and componentize-js SpiderMonkey inside their packages: nothing is downloaded while
# building a component. componentize-js's ahead-of-time option (WEIR_JS_AOT=1 for
# scripts/build-components) needs weval, which it would download: here it is built from
# crates.io instead (install_weval, once: about 35 minutes beside a CI run on two cores).

source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

componentize_py_version=0.25.1
pytest_version=8.3.4
python_tools="$tools/python-operators-$componentize_py_version"

install_python_tools() {
  install_venv "$python_tools" "componentize-py pytest" \
    "componentize-py==$componentize_py_version" "pytest==$pytest_version"
}

componentize_js_version=0.23.0
rolldown_version=1.3.4
js_tools="$tools/js-operators-$componentize_js_version"

install_js_tools() {
  if [[ ! -d "$js_tools/node_modules/@bytecodealliance/componentize-js" || ! -d "$js_tools/node_modules/rolldown" ]]; then
    echo "installing componentize-js $componentize_js_version and rolldown $rolldown_version into $js_tools (once)" >&2
    rm -rf "$js_tools"
    mkdir -p "$js_tools"
    npm install --prefix "$js_tools" --no-audit --no-fund --silent \
      "@bytecodealliance/componentize-js@$componentize_js_version" "rolldown@$rolldown_version" >&2
  fi
}

weval_version=0.5.1
weval="$tools/weval-$weval_version/bin/weval"

install_weval() {
  install_crate weval "$weval_version" "about half an hour"
}
