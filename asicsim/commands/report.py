"""`asicsim report PATH --out PAGE.html`: one self-contained HTML page a colleague opens in a browser.

PATH is a run folder (`asicsim run --out DIR`: the summary table, latency distributions and step series), a
`compare --json` or `run --json` file (the comparison table and a throughput / energy chart), a `claim --json` file
(the claim's report, roofline and verdict), a `scale --json` file (deployments by size and their tokens/s per
watt) or sweep results (`.parquet` / `.csv` with `point_id`: the study's plots
and its best points). Plots are PNGs inlined as data URIs: the page needs no network and no other file.
"""

from __future__ import annotations

import base64
import datetime as _dt
import html
import json
import re
import tempfile
from pathlib import Path

from asicsim.workloads.errors import InputError, install_hint

__all__ = ["register", "run", "build_report", "markdown_to_html", "render_in_chromium"]


def register(sub) -> None:
    p = sub.add_parser("report", help="a self-contained HTML page from a run folder, a compare/claim JSON or a sweep",
                       description=__doc__.splitlines()[2].strip() + " " + " ".join(
                           line.strip() for line in __doc__.splitlines()[3:6]))
    p.add_argument("path", help="run folder (run --out), compare/run/claim/scale --json file, or sweep results")
    p.add_argument("--out", required=True, help="the HTML page to write (e.g. report.html)")
    p.add_argument("--screenshot", metavar="FILE.png", default="",
                   help="also render the page in headless Chromium (if installed) and save a screenshot")
    p.set_defaults(func=run)


def run(args) -> int:
    out = Path(args.out)
    if out.suffix.lower() not in (".html", ".htm"):
        raise InputError("--out", "out", f"{args.out}: the page must end in .html")
    page = build_report(Path(args.path))
    try:
        out.write_text(page, encoding="utf-8")
    except OSError as exc:
        raise InputError("--out", "out", f"cannot write {out}: {exc.strerror}") from None
    print(out)
    if args.screenshot:
        shot = Path(args.screenshot)
        if shot.suffix.lower() != ".png":
            raise InputError("--screenshot", "screenshot", f"{args.screenshot}: must end in .png")
        render_in_chromium(out, shot)
        print(shot)
    return 0


def render_in_chromium(page: Path, screenshot: Path | None = None, timeout_s: float = 120.0) -> tuple[str, list[str]]:
    """(the DOM after load, console lines) of `page` in headless Chromium; with `screenshot`, also a 1200-pixel-wide
    PNG of it. InputError when no Chromium is installed (apt-get install chromium)."""
    import shutil
    import subprocess

    binary = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    if binary is None:
        raise InputError("--screenshot", "chromium", "no headless Chromium found (Debian: apt-get install chromium)")
    base = [binary, "--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars"]
    try:
        done = subprocess.run([*base, "--enable-logging=stderr", "--v=0", "--dump-dom", page.resolve().as_uri()],
                              capture_output=True, text=True, timeout=timeout_s)
        if screenshot is not None:
            subprocess.run([*base, f"--screenshot={screenshot.resolve()}", "--window-size=1200,1400",
                            page.resolve().as_uri()], capture_output=True, timeout=timeout_s, check=True)
    except (subprocess.SubprocessError, OSError) as exc:
        raise InputError("--screenshot", "chromium", f"rendering failed: {exc}") from None
    console = [line for line in done.stderr.splitlines() if "CONSOLE" in line or "Uncaught" in line]
    return done.stdout, console


# --- page ---------------------------------------------------------------------------------------------------------
_STYLE = """body{font-family:system-ui,sans-serif;margin:2em auto;max-width:1200px;color:#222;padding:0 1em}
table{border-collapse:collapse;margin:1em 0;font-size:0.9em}td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}
td:first-child,th:first-child{text-align:left}th{background:#f2f2f2}figure{margin:1.5em 0}img{max-width:100%}
figcaption{color:#555;font-size:0.9em}.meta{color:#666;font-size:0.85em}code{background:#f4f4f4;padding:0 3px}"""
# Marks the page once every inlined image has decoded (tests read it back from the rendered page).
_CHECK = ("<script>window.addEventListener('load',function(){var ok=Array.prototype.every.call(document.images,"
          "function(i){return i.complete&&i.naturalWidth>0});document.body.setAttribute('data-images',"
          "ok?'ok':'broken');});</script>")


def _page(title: str, sections: list[str]) -> str:
    from asicsim.cli import _version

    stamp = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    return (f"<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{html.escape(title)}</title>"
            f"<style>{_STYLE}</style></head><body><h1>{html.escape(title)}</h1>"
            f"<p class=\"meta\">asicsim {html.escape(_version())}, generated {stamp}</p>"
            + "".join(sections) + _CHECK + "</body></html>\n")


def _table(header: list[str], rows: list[list[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _figure(png: Path, caption: str) -> str:
    data = base64.b64encode(png.read_bytes()).decode("ascii")
    return (f"<figure><img alt=\"{html.escape(caption)}\" src=\"data:image/png;base64,{data}\">"
            f"<figcaption>{html.escape(caption)}</figcaption></figure>")


def _summary_table(summaries: list[dict]) -> str:
    from ._common import table_cells

    header = ["metric", *[str(s.get("hardware", "?")) for s in summaries]]
    rows = table_cells(summaries)[1:]
    return _table(header, rows)


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise InputError("report", "matplotlib", f"plots need matplotlib ({install_hint('plot')})") from None
    return plt


def build_report(path: Path) -> str:
    """The HTML page for `path` (see the module docstring); InputError for anything else."""
    if path.is_dir():
        return _run_report(path)
    if not path.is_file():
        raise InputError(str(path), "path", "no such folder or file")
    if path.suffix in (".parquet", ".csv"):
        return _sweep_report(path)
    if path.suffix != ".json":
        raise InputError(str(path), "path", "expected a run folder, a .json from compare/run/claim, or sweep results")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(str(path), "file", f"not readable JSON: {str(exc).splitlines()[0]}") from None
    if isinstance(data, dict) and "verdict" in data and "claim" in data:
        return _claim_report(data)
    if isinstance(data, list) and data and all(isinstance(r, dict) and "network_tiers" in r for r in data):
        return _scale_report(data)
    summaries = data if isinstance(data, list) else [data]
    runs = [s for s in summaries if isinstance(s, dict) and "output_tokens_per_s" in s]
    if not runs:
        raise InputError(str(path), "file", "not a compare, run or claim JSON (no output_tokens_per_s, no verdict)")
    return _compare_report(runs, [s for s in summaries if isinstance(s, dict) and "error" in s])


def _run_report(folder: Path) -> str:
    from .plot import _summary, plot_run_dir, run_title

    summary = _summary(folder)
    if not summary:
        raise InputError(str(folder), "summary.json", "not a run folder (write one with `asicsim run --out DIR`)")
    with tempfile.TemporaryDirectory() as tmp:
        made = plot_run_dir(folder, Path(tmp))
        figures = [_figure(made[0], "Latency distributions: TTFT, TPOT and end-to-end, with p50/p99 and the SLOs"),
                   _figure(made[1], "Step series: batch size, KV-cache use and queue over simulated time")]
    return _page(f"asicsim run: {run_title(summary)}", ["<h2>Summary</h2>", _summary_table([summary]),
                                                        "<h2>Latency</h2>", figures[0], "<h2>Steps</h2>", figures[1]])


def _compare_report(summaries: list[dict], failed: list[dict]) -> str:
    plt = _pyplot()
    names = [str(s["hardware"]) for s in summaries]
    with tempfile.TemporaryDirectory() as tmp:
        fig, axes = plt.subplots(1, 2, figsize=(11, 0.9 + 0.35 * len(names) + 1.5))
        axes[0].barh(names[::-1], [s["output_tokens_per_s"] for s in summaries][::-1], color="tab:blue")
        axes[0].set_xlabel("output tokens/s")
        axes[1].barh(names[::-1], [s.get("energy_j_per_output_token", 0.0) for s in summaries][::-1], color="tab:red")
        axes[1].set_xlabel("energy per output token (J)")
        for ax in axes:
            ax.grid(axis="x", alpha=0.3)
        first = summaries[0]
        fig.suptitle(f"{first.get('model', '')} {first.get('dtype', '')}, {first.get('isl', '')}/{first.get('osl', '')}"
                     f", {first.get('chips', '')} chips")
        fig.tight_layout()
        png = Path(tmp) / "compare.png"
        fig.savefig(png, dpi=110)
        plt.close(fig)
        chart = _figure(png, "Output tokens/s and energy per output token of each system")
    sections = ["<h2>Comparison</h2>", _summary_table(summaries), chart]
    if failed:
        sections += ["<h2>Could not run</h2>", _table(["system", "reason"], [[str(f.get("hardware")), str(f["error"])]
                                                                           for f in failed])]
    return _page("asicsim compare: " + ", ".join(names), sections)


def _scale_report(rows: list[dict]) -> str:
    """`asicsim scale --json` rows: the table by system and size, and tokens/s against tokens/s per watt."""
    from .scale import plot_scale

    columns = ("hardware", "chips", "layout", "output_tokens_per_s", "tokens_per_s_per_chip", "power_w",
               "tokens_per_s_per_w", "slo_met", "network_tiers")
    head = ["system", "chips", "layout", "output tok/s", "tok/s per chip", "power (MW)", "tok/s per W", "SLOs",
            "switch tiers"]

    def cell(row: dict, key: str) -> str:
        value = row.get(key)
        if row.get("error") and key not in ("hardware", "chips"):
            return "-" if key != "layout" else "cannot run: " + str(row["error"])
        if key == "power_w":
            return f"{value / 1e6:.3f}"
        if isinstance(value, float):
            return f"{value:,.3f}" if key == "tokens_per_s_per_w" else f"{value:,.0f}"
        return "yes" if value is True else "no" if value is False else str(value)

    table = _table(head, [[cell(r, k) for k in columns] for r in rows])
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_scale(rows, Path(tmp) / "scale.png")
        figure = _figure(png, "Output tokens/s against tokens/s per watt as each system grows (labels: chips)")
    model = rows[0].get("model", "")
    return _page(f"asicsim scale{': ' + model if model else ''}", ["<h2>Deployments</h2>", table,
                                                                   "<h2>Scale-up and scale-out</h2>", figure])


def _claim_report(result: dict) -> str:
    from asicsim.analysis.claim_report import plot_claim, render_markdown

    with tempfile.TemporaryDirectory() as tmp:
        png = Path(tmp) / "roofline.png"
        plot_claim(result, str(png))
        figure = _figure(png, "Roofline: the hardware's ceilings, the claim and the simulated best case")
    body = markdown_to_html(render_markdown(result))
    claim = result["claim"]
    unit = "tok/s per user" if claim["per_user"] else "tok/s"
    rows = [["claimed", f"{claim['tokens_per_s']:,.0f} {unit}"], ["verdict", str(result["verdict"])],
            ["binding constraint", str(result["binding_constraint"])]]
    for i in result["interpretations"]:
        if i.get("roofline_tokens_per_s"):
            rows.append([f"roofline ({i['accounting']})", f"{i['roofline_tokens_per_s']:,.0f} {unit}"])
        if i.get("simulated_tokens_per_s"):
            rows.append([f"simulated ({i['accounting']})", f"{i['simulated_tokens_per_s']:,.0f} {unit}"])
    table = _table(["", claim["name"]], rows)
    return _page(f"asicsim claim: {claim['name']}", ["<h2>Verdict</h2>", table, body, "<h2>Roofline</h2>", figure])


def _sweep_report(path: Path) -> str:
    from asicsim.analysis.sweep_plots import TOKENS, load_results, plot_sweep

    frame = load_results(path)
    if "point_id" not in frame.columns:
        raise InputError(str(path), "point_id", "not a sweep results file (no point_id column)")
    with tempfile.TemporaryDirectory() as tmp:
        png = plot_sweep(path, Path(tmp) / "sweep.png")
        figure = _figure(png, "The study: throughput against energy and die area, and the programmability curves")
    ok = frame[frame["feasible"].astype(bool)] if "feasible" in frame.columns else frame
    best = ok.sort_values(TOKENS, ascending=False).head(10)
    columns = [c for c in ("point_id", TOKENS, "output_tokens_per_j", "area_total_mm2", "programmable_share")
               if c in best.columns]
    rows = [[f"{v:,.3g}" if isinstance(v, float) else str(v) for v in row] for row in best[columns].itertuples(index=False)]
    return _page(f"asicsim sweep: {path.name}", [f"<p>{len(frame):,} points, {len(ok):,} feasible.</p>", figure,
                                                 "<h2>Best points by output tokens/s</h2>", _table(columns, rows)])


# --- the Markdown the claim report writes (headings, paragraphs, lists, pipe tables, bold, code) -----------------
def _inline(text: str) -> str:
    text = html.escape(text)
    text = re.sub(r"\*\*(.+?)\*\*", r"<strong>\1</strong>", text)
    return re.sub(r"`([^`]+)`", r"<code>\1</code>", text)


def markdown_to_html(text: str) -> str:
    """The subset of Markdown asicsim's reports use, as HTML."""
    out: list[str] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i].rstrip()
        if not line:
            i += 1
            continue
        heading = re.match(r"^(#{1,6}) (.*)$", line)
        if heading:
            level = min(len(heading[1]) + 1, 6)  # the page's own title is the h1
            out.append(f"<h{level}>{_inline(heading[2])}</h{level}>")
            i += 1
        elif line.startswith("|"):
            block = []
            while i < len(lines) and lines[i].startswith("|"):
                block.append([c.strip() for c in lines[i].strip().strip("|").split("|")])
                i += 1
            body = [r for r in block[1:] if not all(set(c) <= set("-: ") for c in r)]
            head = "".join(f"<th>{_inline(c)}</th>" for c in block[0])
            rows = "".join("<tr>" + "".join(f"<td>{_inline(c)}</td>" for c in r) + "</tr>" for r in body)
            out.append(f"<table><thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>")
        elif line.startswith("- "):
            items = []
            while i < len(lines) and lines[i].startswith("- "):
                items.append(f"<li>{_inline(lines[i][2:])}</li>")
                i += 1
            out.append("<ul>" + "".join(items) + "</ul>")
        else:
            out.append(f"<p>{_inline(line)}</p>")
            i += 1
    return "".join(out)
