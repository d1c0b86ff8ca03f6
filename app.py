#!/usr/bin/env python
"""The web demo: photo -> cartoon, makeup off / on, and attribute editing with an intensity slider, as a page
on this machine (Gradio). Nothing leaves it: no analytics, no share link, no fonts or scripts from a CDN.

  python app.py                          # http://127.0.0.1:7860 with the models in pretrained_models/
  python app.py --port 8080 --models my_models/
  make app

The page uses the model folders test.py uses (pretrained_models/README.md): photo2cartoon/ or the bundled
demo_cartoon/ for cartoons, makeup/ (or cyclegan/) for makeup, stgan/, attgan/ and stargan/ for attributes. A
tool without a model says so in the page, with how to get one. Photos go through the face front end first;
a file that is not an image, a huge image or a photo without a face gets a message in the page.
"""
import argparse
import os
import sys

from core import cli

ROOT = os.path.dirname(os.path.abspath(__file__))
# before gradio is imported: no usage statistics, no version check against the network, no hub
os.environ.setdefault("GRADIO_ANALYTICS_ENABLED", "False")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")

CSS = "footer {display: none !important} .message p {color: #b3261e; font-weight: 600}"


def parse_args(argv):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--models", default=os.path.join(ROOT, "pretrained_models"), help="the model folders "
                    "(default pretrained_models/)")
    ap.add_argument("--host", default="127.0.0.1", help="address to serve on (default 127.0.0.1: this machine "
                                                        "only; 0.0.0.0 opens it to the network)")
    ap.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    ap.add_argument("--device_target", default="auto", help="CPU, GPU, Ascend or auto")
    return ap.parse_args(argv)


def _photo_input(gr, elem_id):
    """An upload / webcam image whose file reaches the handler as it arrived: the demo reads it itself, so a
    file that is not an image, or a huge one, gets the demo's message instead of Gradio's generic error."""
    photo = gr.Image(label="Photo", type="filepath", sources=["upload", "webcam"], elem_id=elem_id, height=320)
    inner = photo.preprocess

    def preprocess(payload):
        if payload is not None and payload.path and not (payload.url or "").startswith("data:"):
            return payload.path
        return inner(payload)
    photo.preprocess = preprocess
    return photo


def build_ui(demo):
    import gradio as gr

    def result(elem_id, label):
        return gr.Image(label=label, format="png", interactive=False, elem_id=elem_id, height=320)

    def header(tool, directory):
        """The tab's model, or what to do without one."""
        if directory:
            return gr.Markdown(f"Model: {demo.model_label(directory)}")
        return gr.Markdown(demo.missing_text(tool), elem_classes="message")

    with gr.Blocks(title="Face GANs: cartoon, makeup, attributes", analytics_enabled=False) as ui:
        gr.Markdown("## Face GANs on this machine\nUpload a portrait photo (or use the webcam). It goes through "
                    "the face front end (detect, level the eyes, crop, white background), then the tab's model.")
        with gr.Tab("Photo → cartoon", id="cartoon"):
            header("cartoon", demo.cartoon_model())
            with gr.Row():
                photo = _photo_input(gr, "cartoon-photo")
                face = result("cartoon-face", "Aligned face")
            with gr.Row():
                cartoon = result("cartoon-result", "Cartoon")
                compare = gr.ImageSlider(label="Before / after", format="png", elem_id="cartoon-compare",
                                         interactive=False, height=320, max_height=320)
            run = gr.Button("Cartoonize", variant="primary", elem_id="cartoon-run")
            message = gr.Markdown(elem_id="cartoon-message", elem_classes="message")

            def do_cartoon(path):
                f, c, msg = demo.cartoon(path)
                return f, c, (f, c) if c is not None else None, msg
            run.click(do_cartoon, photo, [face, cartoon, compare, message])

        with gr.Tab("Makeup off / on", id="makeup"):
            header("makeup", demo.makeup_model())
            with gr.Row():
                m_photo = _photo_input(gr, "makeup-photo")
                m_face = result("makeup-face", "Face")
                m_out = result("makeup-result", "Result")
            direction = gr.Radio([("Remove makeup (A → B)", "AtoB"), ("Apply makeup (B → A)", "BtoA")],
                                 value="AtoB", label="Direction", elem_id="makeup-direction")
            m_run = gr.Button("Run", variant="primary", elem_id="makeup-run")
            m_message = gr.Markdown(elem_id="makeup-message", elem_classes="message")
            m_run.click(demo.makeup, [m_photo, direction], [m_face, m_out, m_message])

        with gr.Tab("Attributes", id="attributes"):
            models = demo.attribute_models()
            if not models:
                header("attributes", None)
            first = next(iter(models), None)
            names = demo.attribute_names(first) if first else []
            with gr.Row():
                a_photo = _photo_input(gr, "attr-photo")
                a_face = result("attr-face", "Face")
                a_out = result("attr-result", "Edited")
            with gr.Row():
                model = gr.Dropdown([(demo.model_label(d), n) for n, d in models.items()], value=first,
                                    label="Model", elem_id="attr-model")
                attribute = gr.Dropdown(names, value=names[0] if names else None, label="Change",
                                        elem_id="attr-edit")
            present = gr.CheckboxGroup(names, label="What the photo shows now", elem_id="attr-present")
            intensity = gr.Slider(-1.0, 1.0, value=1.0, step=0.05, label="Intensity (STGAN / AttGAN: 1 full, 0.5 "
                                  "as trained, below 0 the other way)", elem_id="attr-intensity")
            a_run = gr.Button("Edit", variant="primary", elem_id="attr-run")
            a_message = gr.Markdown(elem_id="attr-message", elem_classes="message")

            def on_model(name):
                n = demo.attribute_names(name)
                return gr.update(choices=n, value=n[0] if n else None), gr.update(choices=n, value=[])
            model.change(on_model, model, [attribute, present])
            inputs = [a_photo, model, present, attribute, intensity]
            a_run.click(demo.edit, inputs, [a_face, a_out, a_message])
            intensity.release(demo.edit, inputs, [a_face, a_out, a_message])
    return ui


def main(argv=None):
    args = parse_args(sys.argv[1:] if argv is None else argv)
    if not os.path.isdir(args.models):
        return cli.fail(f"--models is not a folder: {args.models}")
    from core import runtime
    from deploy.web_demo import Demo
    runtime.configure("graph", args.device_target)
    demo = Demo(args.models)
    ui = build_ui(demo)
    import gradio as gr
    print(f"serving the demo on http://{args.host}:{args.port} (Ctrl+C stops it)", flush=True)
    try:
        ui.queue(default_concurrency_limit=1).launch(
            server_name=args.host, server_port=args.port, share=False, inbrowser=False, ssr_mode=False, pwa=False,
            footer_links=[], max_file_size="100mb", show_error=False, quiet=True, css=CSS,
            theme=gr.themes.Default(), mcp_server=False, enable_monitoring=False)
    except OSError as e:
        return cli.fail(f"cannot serve on {args.host}:{args.port}: {str(e).splitlines()[0]}")
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
