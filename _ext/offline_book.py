"""Keep the built site self-contained.

Jupyter Book 1.x always loads sphinx-thebe, which injects a script that names
a CDN URL for thebe (and, on incremental builds, declares it twice, a page
error). This book does not use thebe — Colab is the live option — so the
thebe scripts are dropped from every page.
"""


def _drop_thebe_scripts(app, pagename, templatename, context, doctree):
    scripts = context.get("script_files")
    if not scripts:
        return

    def is_thebe(script) -> bool:
        name = str(getattr(script, "filename", script) or "")
        body = str(getattr(script, "attributes", {}).get("body", ""))
        return "thebe" in name.lower() or "THEBE_JS_URL" in body

    context["script_files"] = [s for s in scripts if not is_thebe(s)]


def setup(app):
    app.connect("html-page-context", _drop_thebe_scripts, priority=900)
    return {"parallel_read_safe": True, "parallel_write_safe": True}
