# The web console (/) and the API docs (/docs) in a real browser: Debian's
# chromium, driven by chromium-driver through python3-selenium
# (t/console/journey.py), walks a person's whole journey on a real stack
# and asserts what the pages show, with no browser console errors and no
# serious or critical axe-core violations; the docs' "try it out" calls
# GET /api/health.  Before that, plain HTTP checks nginx's side: the
# console's security headers, and that the API's answers carry none of
# them.  Screenshots go to the test's directory (kept with
# KVAPI_TEST_KEEP=1) or to KVAPI_CONSOLE_SHOTS.
#
# The journey runs on 12 s access tokens, so the page must rotate its
# refresh token by itself; it covers the account page against the real
# routes (profile, usage and quota, password, sessions, deleting the
# account) and asserts through the API what the page did.
# t/console/api.test.mjs holds the API client to the sessions contract
# (refresh-token rotation, reuse, logout, two tabs) with a fake server,
# for what a real server cannot be made to do on cue.
#
# Every tool comes from script/stack deps (nodejs; with --test chromium,
# chromium-driver, python3-selenium) or from make's npm ci (axe-core):
# none missing is a reason to skip.
use strict;
use warnings;
use File::Basename qw(dirname);
use File::Spec;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest;

my $SRC = File::Spec->rel2abs(dirname(__FILE__) . '/..');
my $BUILD = $ENV{KVAPI_BUILDDIR} // $SRC;
my $AXE = "$BUILD/www/node_modules/axe-core/axe.min.js";
my $PY = '/usr/bin/python3';    # Debian's, which python3-selenium serves

# A missing tool fails this file (never a skip): script/stack deps --test
# and make install them all.
my $missing = 0;
for my $tool ('/usr/bin/chromium', '/usr/bin/chromedriver', $PY, $AXE) {
    ok(-e $tool, "$tool is installed") or $missing++;
}
ok((qx{node --version 2>/dev/null} // '') =~ /^v\d+/, 'node is installed') or $missing++;
if ($missing) {
    done_testing;
    exit 1;
}

# Access tokens of 12 s: the page must rotate its refresh token (at 80 %
# of the lifetime, under 5 minutes) several times during the journey.
my $LIFETIME = 12;
my $s = KVTest->start(token_lifetime => $LIFETIME);
my $CSP = "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    . "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'";

sub console_headers {
    my ($r, $type, $name) = @_;
    subtest $name => sub {
        is($r->{status}, 200, 'status 200');
        is($r->{headers}{'content-type'}, $type, 'Content-Type');
        is($r->{headers}{'content-security-policy'}, $CSP, 'Content-Security-Policy: this origin only, no inline script');
        is($r->{headers}{'x-content-type-options'}, 'nosniff', 'X-Content-Type-Options');
        is($r->{headers}{'referrer-policy'}, 'no-referrer', 'Referrer-Policy');
        is($r->{headers}{'cache-control'}, 'no-cache', 'Cache-Control: revalidate');
        like($r->{headers}{'x-request-id'} // '', qr/^[0-9a-f]{32}$/, 'X-Request-Id');
        # API.md: CORS headers on every response, whoever answers it.
        is($r->{headers}{'access-control-allow-origin'}, '*', 'Access-Control-Allow-Origin, as on every answer');
        is($r->{headers}{'access-control-expose-headers'}, 'ETag, Location, Retry-After, WWW-Authenticate',
            'Access-Control-Expose-Headers, as on every answer');
    };
}

subtest 'nginx serves the console and the docs with their headers' => sub {
    # Not answers of the API: t/81-openapi.t checks what is recorded
    # against the API's document.
    local $ENV{KVAPI_OPENAPI_RECORD};
    my $html = 'text/html; charset=utf-8';
    my $r = $s->request(GET => '/');
    console_headers($r, $html, 'GET /: the console');
    like($r->{body}, qr{<script type="module" src="/ui/app\.js"></script>}, 'it loads its module');
    unlike($r->{body}, qr{<script(?![^>]*\bsrc=)[^>]*>}, 'no inline script');
    unlike($r->{body}, qr{\sstyle=|<style}, 'no inline style');
    console_headers($s->request(GET => '/docs'), $html, 'GET /docs: the API docs');
    console_headers($s->request(GET => '/docs/'), $html, 'GET /docs/ too');
    console_headers($s->request(GET => '/ui/app.js'), 'text/javascript; charset=utf-8', 'a module');
    console_headers($s->request(GET => '/ui/console.css'), 'text/css; charset=utf-8', 'a style sheet');
    console_headers($s->request(GET => '/ui/favicon.svg'), 'image/svg+xml; charset=utf-8', 'the icon');
    $r = $s->request(GET => '/ui/vendor/swagger-ui/swagger-ui-bundle.js');
    console_headers($r, 'text/javascript; charset=utf-8', "Swagger UI from npm");
    cmp_ok(length $r->{body}, '>', 100_000, 'the whole bundle');
    is($s->request(HEAD => '/')->{status}, 200, 'HEAD /');

    $s->error_is($s->request(GET => '/ui/nothing.js'), 'NOT_FOUND', 'a missing file: the JSON 404');
    $s->error_is($s->request(GET => '/ui/'), 'NOT_FOUND', 'no directory listing');
    $s->error_is($s->request(GET => '/index.html'), 'NOT_FOUND', 'the console is at / only');
    $s->error_is($s->request(GET => '/ui/vendor/swagger-ui/index.html'), 'NOT_FOUND',
        "only the Swagger UI files the docs load (not its demo page)");
    $r = $s->request(POST => '/', { json => {} });
    $s->error_is($r, 'METHOD_NOT_ALLOWED', 'POST / is 405 in the envelope');
    is($r->{headers}{allow}, 'GET, HEAD', 'Allow: GET, HEAD');
    $r = $s->request(GET => '/', { headers => { 'If-Match' => '"nope"' } });
    $s->error_is($r, 'PRECONDITION_FAILED', "nginx's If-Match on a page: 412 in the envelope");
};

subtest "the API's answers carry none of the console's headers" => sub {
    for my $r ([GET => '/api/health'], [GET => '/api/openapi.json'], [GET => '/api/data'],
        [GET => '/nothing']) {
        my $res = $s->request(@$r);
        ok(!exists $res->{headers}{$_}, "$r->[0] $r->[1]: no $_")
            for qw(content-security-policy x-content-type-options referrer-policy);
    }
    # A raw URI under /api/ that nginx resolves to a console path is the
    # API's (the worker answers), as before the console existed.
    for my $uri ('/api/..%2F', '/api/..%2Fdocs', '/api/..%2Fui/app.js') {
        my $res = $s->raw("GET $uri HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        $s->error_is($res, 'NOT_FOUND', "$uri: the worker's 404");
        is($res->{headers}{'cache-control'}, 'no-store', "$uri: from the worker (Cache-Control)");
        ok(!exists $res->{headers}{'content-security-policy'}, "$uri: no console headers");
    }
};

# The API client's refresh-token rotation and logout against a fake
# server of API.md's "Accounts and sessions" (node's own test runner):
# the races and failures that the real one shows only by chance.
subtest "the console's API client against the sessions contract" => sub {
    my $log = qx{node "$SRC/t/console/api.test.mjs" 2>&1};
    is($?, 0, 'node t/console/api.test.mjs passes') or diag($log);
    like($log, qr/^# fail 0$/m, 'no test failed');
    my ($pass) = $log =~ /^# pass (\d+)$/m;
    cmp_ok($pass // 0, '>=', 8, 'every test ran');
};

my $shots = $ENV{KVAPI_CONSOLE_SHOTS} // $s->dir . '/screenshots';
my $pid = open(my $out, '-|') // die "fork: $!";
if (!$pid) {
    open STDIN, '<', '/dev/null' or die $!;
    exec $PY, "$SRC/t/console/journey.py", $s->base_url, $shots, $AXE, $LIFETIME or die "exec $PY: $!";
}
my $done;
while (my $line = <$out>) {
    my $ev = eval { JSON::PP->new->decode($line) };
    if (!$ev) {
        diag("journey.py: $line");
        next;
    }
    if ($ev->{done}) {
        $done = 1;
    } elsif (exists $ev->{info}) {
        note($ev->{info});
    } else {
        ok($ev->{ok}, $ev->{name}) or diag($ev->{diag});
    }
}
close $out;
is($?, 0, 'the browser driver exited cleanly');
ok($done, 'the journey reached its end');
diag("screenshots: $shots") if $ENV{KVAPI_TEST_KEEP} || $ENV{KVAPI_CONSOLE_SHOTS};

done_testing;
