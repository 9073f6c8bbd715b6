"""Reading documents into claims and the URLs they cite.

`archiver.seeds` is the public entry point; these modules each do one step of its work:
`decoding` turns bytes into text, `links` finds URLs in text, `text`, `html` and `sheets`
cut one format each into passages, and `citations` turns passages into `model` claims."""
