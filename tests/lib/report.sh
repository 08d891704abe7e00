# Checks of a build's report page, shared by the report and build tests.
#   report_render NAME HTML NEEDLE...   tidy finds no error; headless Chromium
#                                       renders it (a screenshot is made) and
#                                       its text holds every NEEDLE
#   report_check NAME BUILD_DIR NEEDLE... the build wrote report.html, and it
#                                       passes report_render

report_render() {
	local name=$1 html=$2 shot text n
	shift 2
	if ! command -v tidy >/dev/null || ! command -v chromium >/dev/null; then
		fail "$name: tidy and chromium are needed (make deps installs them)"
		return
	fi
	# tidy: exit 2 on errors, 1 on warnings (style), 0 on neither.
	tidy -q -errors "$html" >/dev/null 2>"$html.tidy"
	n=$?
	if [ "$n" -lt 2 ] && ! grep -q 'Error:' "$html.tidy"; then
		pass "$name: tidy finds no error"
	else
		fail "$name: tidy: exit $n: $(head -n 3 "$html.tidy")"
	fi
	shot=${html%.html}.png
	rm -f "$shot"
	timeout 120 chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
		--disable-dev-shm-usage --screenshot="$shot" --window-size=1200,2000 \
		"file://$html" >/dev/null 2>&1
	if [ -s "$shot" ] && [ "$(head -c 8 "$shot" | od -An -tx1 | tr -d ' \n')" = 89504e470d0a1a0a ]; then
		pass "$name: Chromium renders a screenshot"
	else
		fail "$name: Chromium made no PNG screenshot"
	fi
	text=$(timeout 120 chromium --headless=new --no-sandbox --disable-gpu --no-first-run \
		--disable-dev-shm-usage --dump-dom "file://$html" 2>/dev/null)
	for n in "$@"; do
		check_contains "$name: rendered page holds '$n'" "$text" "$n"
	done
}

report_check() {
	local name=$1 dir=$2
	shift 2
	if [ -f "$dir/report.html" ]; then
		pass "$name: report.html written"
		report_render "$name" "$dir/report.html" "$@"
	else
		fail "$name: no report.html in '$dir'"
	fi
}
