"""Stage 1, reading: documents (articles, Markdown, HTML, text, claim sheets) into claims with
stable ids and the URLs they cite. `seeds` is the entry point; `decoding` turns bytes into
text, `links` finds URLs in text, `text`, `html` and `sheets` cut one format each into
passages, `citations` turns passages into `model` claims, `urls` normalises URLs."""
