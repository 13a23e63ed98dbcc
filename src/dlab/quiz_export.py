"""An experiment's pre-lab and viva-voce questions as files a learning-management system
imports: Moodle GIFT, an IMS QTI 1.2 zip (Canvas) and a plain CSV.

The answers are the question bank's own (`dlab.questions`), never sentences filled from a
student's runs: a quiz is set for a whole class, so no one student's measurements belong
in it. `answers=False` gives the questions alone.

Every question is an essay question with the bank's answer as general feedback (shown
after the attempt; a teacher grades the response). No question is short-answer: the
answers are explanations of one to five sentences, and Moodle's short-answer type marks
a response right only when it matches a stored string, so a correct answer in other
words would be marked wrong.

GIFT: `$CATEGORY: $course$/top/dlab/Experiment N: title`, then one question per block,
`::5.P2::[plain]question {####[plain]answer}`. The characters GIFT reserves,
~ = # { } : and the backslash, are written with a backslash before them (as Moodle's own
export does), a newline as `\\n`; the category line is not escaped because Moodle reads
it raw. `[plain]` makes Moodle show the text as written, so a `<` in a formula stays one;
it is written before the feedback too, so that feedback opening with `[` is not taken for
a format name.

QTI: `imsmanifest.xml` and `dlab_expNN/dlab_expNN.xml`, one `essay_question` item per
entry in the layout Canvas exports, with the answer as `general_fb` item feedback; the
text goes in as one HTML paragraph. The same questions give the same zip, byte for byte.

CSV: one row per question (experiment, label, section, type, question, answer), UTF-8
with a byte-order mark so that Excel reads the Greek letters and minus signs right;
without answers the answer column is left out.
"""

from __future__ import annotations

import csv
import html
import io
import xml.etree.ElementTree as ET
import zipfile

from dlab.questions import Entry, QuestionSet

__all__ = ["CSV_COLUMNS", "gift_escape", "gift_question", "qti_names", "to_csv", "to_gift",
           "to_qti"]

CSV_COLUMNS = ("experiment", "label", "section", "type", "question", "answer")
QTI_NS = "http://www.imsglobal.org/xsd/ims_qtiasiv1p2"
MANIFEST_NS = "http://www.imsglobal.org/xsd/imscp_v1p1"
_GIFT_RESERVED = {"\\": "\\\\", "~": "\\~", "=": "\\=", "#": "\\#", "{": "\\{", "}": "\\}",
                  ":": "\\:", "\n": "\\n", "\r": ""}


def _heading(qset: QuestionSet) -> str:
    return f"Experiment {qset.experiment}: {qset.title}"


# -------------------------------------------------------------------------- GIFT


def gift_escape(text: str) -> str:
    """Text with GIFT's reserved characters escaped: `a = {0, 1}` -> `a \\= \\{0, 1\\}`."""
    return "".join(_GIFT_RESERVED.get(c, c) for c in text)


def gift_question(title: str, question: str, feedback: str | None) -> str:
    """One essay question; `feedback` (None for none) becomes its general feedback."""
    body = "" if feedback is None else "####[plain]" + gift_escape(feedback)
    return f"::{gift_escape(title)}::[plain]{gift_escape(question)} {{{body}}}\n"


def to_gift(qset: QuestionSet, entries: list[Entry], answers: bool = True) -> str:
    """The entries as a Moodle GIFT file, in a question category named after the experiment."""
    category = _heading(qset).replace("/", "//")  # Moodle's escape for / in a name
    blocks = [f"// {_heading(qset)}. {len(entries)} pre-lab and viva-voce questions from dlab, "
              f"essay type{', the answer as general feedback' if answers else ''}.\n"
              f"$CATEGORY: $course$/top/dlab/{category}\n"]
    blocks += [gift_question(e.id, e.question, e.answer if answers else None) for e in entries]
    return "\n".join(blocks)


# --------------------------------------------------------------------------- QTI


def qti_names(qset: QuestionSet) -> tuple[str, str]:
    """(assessment identifier, its file in the zip): ("dlab_exp05", "dlab_exp05/dlab_exp05.xml")."""
    ident = f"dlab_exp{qset.experiment:02d}"
    return ident, f"{ident}/{ident}.xml"


def _sub(parent: ET.Element, tag: str, text: str | None = None, **attrib: str) -> ET.Element:
    element = ET.SubElement(parent, tag, attrib)
    element.text = text
    return element


def _html_material(parent: ET.Element, text: str) -> None:
    """A `material` holding the plain text as one HTML paragraph (ElementTree escapes the XML)."""
    _sub(_sub(parent, "material"), "mattext", f"<p>{html.escape(text, quote=False)}</p>",
         texttype="text/html")


def _qti_item(section: ET.Element, entry: Entry, answers: bool) -> None:
    item = _sub(section, "item", ident=f"dlab_{entry.experiment}_{entry.label}", title=entry.id)
    meta = _sub(_sub(item, "itemmetadata"), "qtimetadata")
    for label, value in (("question_type", "essay_question"), ("points_possible", "1.0")):
        field = _sub(meta, "qtimetadatafield")
        _sub(field, "fieldlabel", label)
        _sub(field, "fieldentry", value)
    presentation = _sub(item, "presentation")
    _html_material(presentation, entry.question)
    response = _sub(presentation, "response_str", ident="response1", rcardinality="Single")
    _sub(_sub(response, "render_fib"), "response_label", ident="answer1", rshuffle="No")
    processing = _sub(item, "resprocessing")
    _sub(_sub(processing, "outcomes"), "decvar", maxvalue="100", minvalue="0",
         varname="SCORE", vartype="Decimal")
    if answers:
        shown = _sub(processing, "respcondition", **{"continue": "Yes"})
        _sub(_sub(shown, "conditionvar"), "other")
        _sub(shown, "displayfeedback", feedbacktype="Response", linkrefid="general_fb")
    _sub(_sub(_sub(processing, "respcondition", **{"continue": "No"}), "conditionvar"), "other")
    if answers:
        feedback = _sub(item, "itemfeedback", ident="general_fb")
        _html_material(_sub(feedback, "flow_mat"), entry.answer)


def _xml(root: ET.Element) -> bytes:
    ET.indent(root)
    return ET.tostring(root, encoding="UTF-8", xml_declaration=True) + b"\n"


def to_qti(qset: QuestionSet, entries: list[Entry], answers: bool = True) -> bytes:
    """The entries as an IMS QTI 1.2 package (zip bytes) that Canvas imports as one quiz."""
    ident, path = qti_names(qset)
    root = ET.Element("questestinterop", xmlns=QTI_NS)
    title = f"{_heading(qset)}, pre-lab and viva-voce (dlab)"
    section = _sub(_sub(root, "assessment", ident=ident, title=title), "section",
                   ident="root_section")
    for entry in entries:
        _qti_item(section, entry, answers)

    manifest = ET.Element("manifest", identifier=f"{ident}_manifest", xmlns=MANIFEST_NS)
    metadata = _sub(manifest, "metadata")
    _sub(metadata, "schema", "IMS Content")
    _sub(metadata, "schemaversion", "1.1.3")
    _sub(manifest, "organizations")
    resource = _sub(_sub(manifest, "resources"), "resource", identifier=ident,
                    type="imsqti_xmlv1p2", href=path)
    _sub(resource, "file", href=path)

    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as zf:
        for name, data in (("imsmanifest.xml", _xml(manifest)), (path, _xml(root))):
            info = zipfile.ZipInfo(name, date_time=(1980, 1, 1, 0, 0, 0))  # same bytes each time
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            zf.writestr(info, data)
    return buffer.getvalue()


# --------------------------------------------------------------------------- CSV


def to_csv(qset: QuestionSet, entries: list[Entry], answers: bool = True) -> str:
    """One row per question under a header row; starts with a byte-order mark for Excel.
    Without answers the `answer` column is left out."""
    columns = CSV_COLUMNS if answers else CSV_COLUMNS[:-1]
    buffer = io.StringIO()
    writer = csv.writer(buffer)  # RFC 4180: CRLF line ends, quotes only where needed
    writer.writerow(columns)
    for e in entries:
        row = [qset.experiment, e.label, e.section, "essay", e.question, e.answer]
        writer.writerow(row[:len(columns)])
    return "\ufeff" + buffer.getvalue()
