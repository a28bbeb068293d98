"""Structural rules every chapter follows; cheap, so they run before the slow book build."""

import ast
import builtins
import json
import re

import pytest
from bookfiles import chapters, exercises, strip_solutions

from mgs_teach import checks


def cells(path):
    return json.loads(path.read_text())["cells"]


def source(cell):
    return "".join(cell["source"])


@pytest.fixture(params=chapters(), ids=lambda p: p.stem)
def chapter(request):
    return request.param


def test_there_are_chapters():
    assert len(chapters()) >= 2


def test_committed_without_outputs(chapter):
    for cell in cells(chapter):
        if cell["cell_type"] == "code":
            assert cell.get("outputs", []) == [], f"{chapter.name} has outputs in git"
            assert cell.get("execution_count") is None


def test_prints_its_scale_and_device(chapter):
    code = [source(c) for c in cells(chapter) if c["cell_type"] == "code"]
    assert any("scale.banner()" in c for c in code[:2]), "print scale.banner() at the top"
    assert any("mgs_teach" in c for c in code[:2]), "import from mgs_teach at the top"


def test_has_four_exercises_each_with_a_solution(chapter):
    text = "\n".join(source(c) for c in cells(chapter) if c["cell_type"] == "markdown")
    exercises = text.count("```{exercise}")
    assert exercises >= 4, f"{chapter.name} has {exercises} exercises"
    assert text.count("```{solution-start}") == exercises
    assert text.count("```{solution-end}") == exercises


def test_every_coding_exercise_has_a_self_check(chapter):
    """An exercise whose worked solution runs code asks for code, so it names a self-check
    from ``mgs_teach.checks`` in its statement, and its solution runs that check."""
    for ex in exercises(chapter):
        if not ex.solution_code:
            continue
        named = set(re.findall(r"checks\.(\w+)", ex.statement))
        assert named, f"{ex.label}: name its self-check (checks.<name>) in the statement"
        assert named <= set(checks.__all__), f"{ex.label}: no such check {named}"
        called = set(re.findall(r"checks\.(\w+)\(", "\n".join(ex.solution_code)))
        assert named <= called, f"{ex.label}: the solution should run {named - called}"


# A cell shows a figure if it shows one explicitly or draws one that the inline backend then
# displays at the end of the cell: plt.subplots/plt.figure, or a library plot that makes its own
# figure (widgets.static_grid, plots.history without axes, plots.radar without an axes).
FIGURE = re.compile(
    r"plt\.show\(\)|display\(fig|plt\.(subplots|figure)\(|static_grid\(|fit_and_plot\("
    r"|plots\.(history|radar|kernel_heatmap|decision_boundary)\("
)


def shows_figure(cell):
    tags = cell["metadata"].get("tags", [])
    hidden = "remove-output" in tags or "remove-cell" in tags  # a widget, or not on the page
    return cell["cell_type"] == "code" and not hidden and bool(FIGURE.search(source(cell)))


def alt_text(cell):
    return cell["metadata"].get("mystnb", {}).get("image", {}).get("alt")


def test_every_figure_has_alt_text(chapter):
    """myst-nb turns ``mystnb.image.alt`` into the ``alt`` of the figure's <img>: every cell
    that shows a figure describes it in words (plain text: no LaTeX, which an alt cannot
    render), and no other cell carries one."""
    figures = 0
    for cell in cells(chapter):
        alt = alt_text(cell)
        where = f"{chapter.name}, cell {cell.get('id')}"
        if shows_figure(cell):
            figures += 1
            assert isinstance(alt, str) and len(alt.strip()) >= 40, (
                f"{where} shows a figure: describe it in metadata.mystnb.image.alt"
            )
            assert "$" not in alt, f"{where}: write the alt text as plain text, not LaTeX"
        else:
            assert alt is None, f"{where} shows no figure but has alt text"
    assert figures >= 1, f"{chapter.name}: the rule found no figure; does it still fit?"


def _bound_names(tree):
    """Names a cell binds anywhere (assignments, definitions, imports, arguments, loops)."""
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            names |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.arg):
            names.add(node.arg)
    return names


def test_chapters_run_without_their_solutions(chapter):
    """The student edition can execute its solution-free notebooks: no code outside the
    solutions reads a name that only a solution defines (checked on the syntax tree)."""
    known = set(dir(builtins)) | {"display", "get_ipython"}
    for cell in strip_solutions(json.loads(chapter.read_text()))["cells"]:
        if cell["cell_type"] != "code":
            continue
        tree = ast.parse(source(cell))
        bound = _bound_names(tree)
        read = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)}
        assert read <= known | bound, f"{chapter.name}: needs {read - known - bound}"
        known |= bound


def test_ci_runs_the_readme_test_command():
    from bookfiles import ROOT

    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"```bash\n(.*?)```", readme, re.S)
    commands = [b.strip() for b in blocks[:2]]
    assert all(c.startswith("python3 -m venv") and "\n" not in c for c in commands), (
        "the README opens with two one-line set-up-and-run commands"
    )
    assert "jupyter-book build" in commands[0] and "pytest" in commands[1]
    assert commands[1] in (ROOT / ".ci" / "run").read_text()


# Standard TeX and AMS commands the chapters use, all known to MathJax out of the box (in the
# book, in JupyterLab and in Colab alike). The book defines no macros of its own: a command
# outside this list (like a `\tr` defined only in _config.yml) would show as a red error in a
# notebook opened outside the book.
STANDARD_TEX = set(
    """
Big Bigl Bigr Delta Gamma Lambda Omega Phi Pi Psi Sigma Theta Xi alpha approx bar beta big bigl
bigr blacksquare boldsymbol cdot cdots chi circ delta det diag dim dots ell emptyset epsilon
equiv eta exp forall frac gamma ge geq hat in inf infty int iota kappa lambda langle lceil ldots
le leftarrow leq lfloor lim ln log mapsto mathbb mathbf mathcal mathrm max min mid mu nabla ne
neq nu odot omega operatorname otimes partial phi pi pm prod psi qquad quad rangle rceil rfloor
rho right left rightarrow sigma sim sqrt star subset subseteq substack sum sup tanh tau text
textrm tfrac theta tilde times to top underbrace underset upsilon varepsilon varphi vec vee
wedge widehat xi zeta
""".split()
)


def test_maths_uses_only_standard_commands(chapter):
    text = "\n".join(source(c) for c in cells(chapter) if c["cell_type"] == "markdown")
    used = set()
    for m in re.finditer(r"\$\$(.+?)\$\$|\$([^$\n]+?)\$", text, flags=re.S):
        used |= set(re.findall(r"\\([A-Za-z]+)", m.group(0)))
    assert used <= STANDARD_TEX, (
        f"{chapter.name}: commands not defined outside the book: {used - STANDARD_TEX}"
    )


def test_the_book_defines_no_maths_macros():
    from bookfiles import ROOT

    assert "macros" not in (ROOT / "_config.yml").read_text()
