# Shared by scripts/build-components: the pinned toolchains of operators written in Python
# (componentize-py, with pytest for their native tests), installed outside the clone
# (scripts/lib/tools.sh). Source it; it defines functions only. componentize-py carries
# CPython and its standard library inside its wheel: nothing is downloaded while building a
# component.

source "$(dirname "${BASH_SOURCE[0]}")/tools.sh"

componentize_py_version=0.25.1
pytest_version=8.3.4
python_tools="$tools/python-operators-$componentize_py_version"

install_python_tools() {
  install_venv "$python_tools" "componentize-py pytest" \
    "componentize-py==$componentize_py_version" "pytest==$pytest_version"
}
