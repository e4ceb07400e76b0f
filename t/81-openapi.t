# docs/openapi.json (API.md "Beyond the seed": GET /api/openapi.json).  The
# document nginx serves is the file in the repo; it is valid OpenAPI 3.1
# (JSON::Validator against the official OAS 3.1 schema under __DATA__); it
# agrees with the route table of src/router.c and with the contract's error
# table; and every answer matches the status, headers and body schema the
# document gives its operation: the answers this file provokes (every
# operation, every status reachable from outside) and, when
# KVAPI_OPENAPI_RECORD names a file other test files appended their answers
# to (t/lib/KVTest.pm's recorder), those too.
use strict;
use warnings;
use utf8;
use Cwd qw(abs_path);
use File::Basename qw(dirname);
use File::Temp ();
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(show);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

# Debian's libjson-validator-perl (script/stack deps installs it).
unless (eval { require JSON::Validator; JSON::Validator->VERSION(5);
                require JSON::Validator::Schema::OpenAPIv3; 1 }) {
    fail('JSON::Validator 5 is installed (apt-get install libjson-validator-perl)');
    done_testing;
    exit;
}

my $SRCDIR = $ENV{KVAPI_SRCDIR} // abs_path(dirname(__FILE__) . '/..');
my $DOC_FILE = "$SRCDIR/docs/openapi.json";
my $J = JSON::PP->new->utf8->canonical->allow_nonref;
my $CT = 'application/json; charset=utf-8';
my $KEY_TPL = '/api/data/{key}';

sub slurp {
    my ($file) = @_;
    open my $fh, '<:raw', $file or die "$file: $!";
    local $/;
    return scalar <$fh>;
}

sub clone { $J->decode($J->encode($_[0])) }


my $DOC_TEXT = slurp($DOC_FILE);
my $DOC = eval { $J->decode($DOC_TEXT) };
ok ref $DOC eq 'HASH', 'docs/openapi.json is a JSON object' or do {
    diag $@;
    done_testing;
    exit;
};

# ---------------------------------------------------------------------------
# The validator.
#
# JSON::Validator 5.14 knows OAS 3.1 documents and checks them against
# https://spec.openapis.org/oas/3.1/schema/2021-05-20, which Debian's
# package does not ship (its +dfsg tarball drops the schema cache) and a
# test must not download.  __DATA__ holds the official schema instead
# (OAI/OpenAPI-Specification schemas/v3.1/schema.json, $id .../2022-10-07,
# commit 157a4c81; Apache-2.0), one $defs entry a line.  Three things
# JSON::Validator's draft 2019-09 code does not do are rewritten into
# equivalents it does:
#  - "$ref" beside other keywords: the target's keywords replace the
#    siblings of the same name (so "paths" lost its patternProperties):
#    the $ref moves into allOf.
#  - "unevaluatedProperties": false is ignored: it becomes
#    "additionalProperties": false over every property name and pattern
#    that the schema and its in-place subschemas ($ref, allOf, anyOf,
#    oneOf, then, else, dependentSchemas) name, which is looser only for a
#    name that some condition allows.
#  - "$dynamicRef": "#meta" (where Schema Objects go) is ignored: it
#    becomes a $ref to $defs/schema (an object or a boolean); Schema
#    Objects get the keyword check further down.
# ---------------------------------------------------------------------------

my $META = do { local $/; $J->decode(scalar <DATA>) };
adapt($META, $META);

sub adapt {
    my ($meta, $s) = @_;
    if (ref $s eq 'ARRAY') { adapt($meta, $_) for @$s; return }
    return unless ref $s eq 'HASH';
    adapt($meta, $_) for values %$s;
    if (exists $s->{'$dynamicRef'}) {
        $s->{'$ref'} = '#/$defs/schema' if delete($s->{'$dynamicRef'}) eq '#meta';
    }
    if (defined $s->{'$ref'} && !ref $s->{'$ref'} && grep { !/^(?:\$ref|\$comment|description)$/ } keys %$s) {
        unshift @{ $s->{allOf} }, { '$ref' => delete $s->{'$ref'} };
    }
    if (JSON::PP::is_bool($s->{unevaluatedProperties}) && !$s->{unevaluatedProperties}) {
        my (%names, %patterns);
        evaluated($meta, $s, \%names, \%patterns, {});
        delete $s->{unevaluatedProperties};
        $s->{additionalProperties} = JSON::PP::false;
        $s->{properties}{$_} //= JSON::PP::true for keys %names;
        $s->{patternProperties}{$_} //= JSON::PP::true for keys %patterns;
    }
}

sub pointer {
    my ($root, $ptr) = @_;
    $ptr =~ s/^#// or return undef;
    my $n = $root;
    for my $p (grep { length } split m{/}, $ptr) {
        $p =~ s/~1/\//g;
        $p =~ s/~0/~/g;
        $n = ref $n eq 'ARRAY' ? $n->[$p] : ref $n eq 'HASH' ? $n->{$p} : undef;
    }
    return $n;
}

sub evaluated {
    my ($meta, $s, $names, $patterns, $seen) = @_;
    return unless ref $s eq 'HASH' && !$seen->{$s}++;
    $names->{$_} = 1 for keys %{ $s->{properties} || {} };
    $patterns->{$_} = 1 for keys %{ $s->{patternProperties} || {} };
    evaluated($meta, pointer($meta, $s->{'$ref'}), $names, $patterns, $seen)
        if defined $s->{'$ref'} && !ref $s->{'$ref'};
    evaluated($meta, $_, $names, $patterns, $seen)
        for @{ $s->{allOf} || [] }, @{ $s->{anyOf} || [] }, @{ $s->{oneOf} || [] },
            grep({ defined } @$s{qw(then else)}), values %{ $s->{dependentSchemas} || {} };
}

# A JSON::Validator::Schema::OpenAPIv3 of a document (resolved: a $ref
# that leads nowhere dies), and its errors against the OAS 3.1 schema.
sub load_doc {
    my ($doc) = @_;
    my $store = JSON::Validator->new->store;
    $store->add($META->{'$id'} => clone($META));
    # No recursive_data_protection: it caches results by the addresses of
    # schema and data, and JSON::Validator builds short-lived schema
    # hashes whose addresses come back for other schemas (an "if" then
    # passed for a parameter it did not match).  Documents and answers
    # hold no cycles.
    my $vs = eval {
        JSON::Validator::Schema::OpenAPIv3->new(clone($doc), store => $store,
            specification => $META->{'$id'}, recursive_data_protection => 0);
    };
    return (undef, ["cannot load: $@"]) unless $vs;
    my $meta = JSON::Validator::Schema::Draft201909->new(store => $store,
        recursive_data_protection => 0)->resolve($META->{'$id'});
    return ($vs, [ map {"$_"} $meta->validate(clone($doc)) ]);
}

# The JSON Schema 2020-12 keywords (and OAS's own) a Schema Object may
# use: a misspelt keyword would silently validate nothing.
my %KEYWORDS = map { $_ => 1 } qw($ref $id $schema $comment $defs $anchor
    $dynamicRef $dynamicAnchor type enum const multipleOf maximum
    exclusiveMaximum minimum exclusiveMinimum maxLength minLength pattern
    maxItems minItems uniqueItems maxContains minContains maxProperties
    minProperties required dependentRequired properties patternProperties
    additionalProperties propertyNames items prefixItems contains allOf anyOf
    oneOf not if then else dependentSchemas unevaluatedItems
    unevaluatedProperties title description default deprecated readOnly
    writeOnly examples example format contentEncoding contentMediaType
    contentSchema discriminator xml externalDocs);

sub lint_schema {
    my ($s, $where, $out) = @_;
    return if JSON::PP::is_bool($s);
    return push @$out, "$where: not a schema" unless ref $s eq 'HASH';
    for my $k (sort keys %$s) {
        push @$out, "$where: unknown keyword '$k'" unless $KEYWORDS{$k} || $k =~ /^x-/;
    }
    for my $k (qw(properties patternProperties $defs dependentSchemas)) {
        lint_schema($s->{$k}{$_}, "$where/$k/$_", $out) for sort keys %{ $s->{$k} || {} };
    }
    for my $k (qw(items additionalProperties not if then else contains propertyNames
                  unevaluatedItems unevaluatedProperties contentSchema)) {
        lint_schema($s->{$k}, "$where/$k", $out) if exists $s->{$k};
    }
    for my $k (qw(allOf anyOf oneOf prefixItems)) {
        my $i = 0;
        lint_schema($_, "$where/$k/" . $i++, $out) for @{ $s->{$k} || [] };
    }
}

# Every Schema Object of an OpenAPI document: components/schemas and the
# "schema" of parameters, headers and media types.
sub schema_roots {
    my ($n, $where, $out) = @_;
    if (ref $n eq 'HASH') {
        for my $k (sort keys %$n) {
            my $w = "$where/$k";
            if ($k eq 'schema') { push @$out, [ $w, $n->{$k} ] }
            elsif ($k eq 'schemas' && $where eq '#/components') {
                push @$out, [ "$w/$_", $n->{$k}{$_} ] for sort keys %{ $n->{$k} };
            }
            else { schema_roots($n->{$k}, $w, $out) }
        }
    } elsif (ref $n eq 'ARRAY') {
        schema_roots($n->[$_], "$where/$_", $out) for 0 .. $#$n;
    }
}

my @METHODS = qw(get head post put delete options patch trace);

sub operations {
    my ($doc) = @_;
    my @ops;
    for my $p (sort keys %{ $doc->{paths} }) {
        for my $m (@METHODS) {
            push @ops, [ $p, $m, $doc->{paths}{$p}{$m} ] if $doc->{paths}{$p}{$m};
        }
    }
    return @ops;
}

# $n->{a}{b}... without autovivification (the document must not change).
sub dig {
    my ($n, @path) = @_;
    for (@path) {
        return undef unless ref $n eq 'HASH' && exists $n->{$_};
        $n = $n->{$_};
    }
    return $n;
}

sub deref {
    my ($doc, $n) = @_;
    my %seen;
    while (ref $n eq 'HASH' && defined $n->{'$ref'} && !$seen{ $n->{'$ref'} }++) {
        $n = pointer($doc, $n->{'$ref'});
    }
    return $n;
}

# The error codes a response's body schema allows: the *Error schemas it
# names (directly or through oneOf).
sub error_codes {
    my ($doc, $schema) = @_;
    my @refs = defined $schema->{'$ref'} ? ($schema) : @{ $schema->{oneOf} || [] };
    my @codes;
    for my $r (@refs) {
        my $e = deref($doc, $r) or next;
        push @codes, grep { defined } map { dig($_, qw(properties code const)) } $e, @{ $e->{allOf} || [] };
    }
    return @codes;
}

# Everything the document must agree with beyond the OAS schema: path
# templates and their parameters, operation ids, the contract's error
# table, HEAD beside GET, OPTIONS everywhere, the route table.
sub semantic_errors {
    my ($doc) = @_;
    my @e;
    my %ids;
    for my $op (operations($doc)) {
        my ($p, $m, $o) = @$op;
        my $where = uc($m) . " $p";
        push @e, "$where: operationId '$o->{operationId}' twice" if $o->{operationId} && $ids{ $o->{operationId} }++;
        my @declared = map { deref($doc, $_) } @{ $doc->{paths}{$p}{parameters} || [] }, @{ $o->{parameters} || [] };
        my %path_params = map { $_->{name} => $_ } grep { $_->{in} eq 'path' } @declared;
        my @tpl = $p =~ /\{([^}]+)\}/g;
        for (@tpl) {
            push @e, "$where: {$_} has no required path parameter"
                unless $path_params{$_} && $path_params{$_}{required};
        }
        for (keys %path_params) {
            my $n = $_;
            push @e, "$where: path parameter '$n' is not in the path" unless grep { $_ eq $n } @tpl;
        }
        my $bearer = grep { exists $_->{bearerAuth} } @{ $o->{security} // $doc->{security} // [] };
        my $r401 = deref($doc, dig($o, qw(responses 401)));
        my $s401 = dig($r401, 'content', 'application/json', 'schema');
        my @c401 = $s401 ? error_codes($doc, $s401) : ();
        if ($bearer) {
            # INVALID_TOKEN, and for the routes that check a password in
            # the body (PUT /api/users/me/password, DELETE /api/users/me)
            # INVALID_CREDENTIALS beside it: check_answer wants
            # WWW-Authenticate on every INVALID_TOKEN answer.
            push @e, "$where: Bearer operation without 401 INVALID_TOKEN + WWW-Authenticate"
                unless ((grep { $_ eq 'INVALID_TOKEN' } @c401) && !grep({ $_ ne 'INVALID_TOKEN' && $_ ne 'INVALID_CREDENTIALS' } @c401)
                        || $m eq 'head' && $r401 && !$s401)
                    && dig($r401, 'headers', 'WWW-Authenticate');
        } else {
            push @e, "$where: INVALID_TOKEN on an operation without Bearer" if grep { $_ eq 'INVALID_TOKEN' } @c401;
        }
        for my $st (sort keys %{ $o->{responses} }) {
            push @e, "$where: response '$st' is not a status code" unless $st =~ /^[1-5][0-9][0-9]$/;
            my $r = deref($doc, $o->{responses}{$st}) or do { push @e, "$where $st: unresolved"; next };
            next unless $r->{content};
            my @types = keys %{ $r->{content} };
            push @e, "$where $st: content types @types" unless "@types" eq 'application/json';
            next if $m eq 'head';
            my $schema = dig($r, 'content', 'application/json', 'schema') or next;
            for my $code (error_codes($doc, $schema)) {
                my $want = $KVTest::ERRORS{$code};
                push @e, "$where $st: unknown error code $code" unless $want;
                push @e, "$where $st: $code is HTTP $want->[0]" if $want && $want->[0] != $st;
            }
            push @e, "$where $st: an error status without an error schema"
                if $st >= 400 && !error_codes($doc, $schema);
        }
        push @e, "$where: HEAD answers with a body" if $m eq 'head' && grep { deref($doc, $_)->{content} } values %{ $o->{responses} };
    }
    for my $p (sort keys %{ $doc->{paths} }) {
        my $pi = $doc->{paths}{$p};
        push @e, "$p: no OPTIONS preflight" unless dig($pi, qw(options responses 204));
        if ($pi->{get}) {
            my @g = sort keys %{ $pi->{get}{responses} };
            my @h = sort keys %{ dig($pi, qw(head responses)) || {} };
            push @e, "$p: HEAD does not answer as GET does (GET @g, HEAD @h)" unless "@g" eq "@h";
        }
    }
    # The error table, word for word.
    my $s = $doc->{components}{schemas};
    my @enum = sort @{ dig($s, qw(ErrorCode enum)) || [] };
    push @e, "ErrorCode enum (@enum) is not the contract's codes"
        unless "@enum" eq join ' ', sort keys %KVTest::ERRORS;
    my %msg;
    for my $name (sort keys %$s) {
        next unless $name =~ /Error$/ && $name ne 'Error';
        my ($code) = error_codes($doc, { '$ref' => "#/components/schemas/$name" });
        next unless defined $code;
        my ($msg) = grep { defined } map { dig($_, qw(properties message const)) }
            $s->{$name}, @{ $s->{$name}{allOf} || [] };
        $msg{$code}++;
        push @e, "$name: message of $code is not the contract's"
            unless ($msg // '') eq ($KVTest::ERRORS{$code}[1] // '-');
    }
    for (sort keys %KVTest::ERRORS) {
        push @e, "no *Error schema for $_" unless $msg{$_};
    }
    return @e;
}

# The route table of the worker (src/router.c) against the document.
sub router_errors {
    my ($doc) = @_;
    my $src = slurp("$SRCDIR/src/router.c");
    my ($table) = $src =~ /\broutes\[\]\s*=\s*\{(.*?)\n\};/s or return ('src/router.c: no route table');
    my %routed;
    # A path is a string or a #defined name (KEY_PREFIX); one that ends
    # in / is a prefix: the document's template right below it.
    my %define = (slurp("$SRCDIR/src/extern.h") . $src) =~ /^#define\s+(\w+)\s+"([^"]*)"/mg;
    while ($table =~ /\{\s*(\w+|"[^"]*")\s*,\s*"([A-Z]+)"\s*,\s*(\d)/g) {
        my ($p, $m, $auth) = ($1, lc $2, $3);
        $p = $p =~ /\A"(.*)"\z/ ? $1 : $define{$p} // next;
        if ($p =~ m{/\z}) {
            my ($tpl) = grep { m{\A\Q$p\E\{[^{}/]+\}\z} } keys %{ $doc->{paths} };
            $p = $tpl // $p;
        }
        $routed{$p}{$m} = $auth;
    }
    $routed{'/api/openapi.json'} = { get => 0, head => 0 };    # nginx
    my @e;
    for my $p (sort keys %{ { %routed, %{ $doc->{paths} } } }) {
        my @doc = sort grep { $_ ne 'options' && dig($doc, 'paths', $p, $_) } @METHODS;
        my @src = sort keys %{ $routed{$p} || {} };
        push @e, "$p: the server answers (@src), the document lists (@doc)" unless "@doc" eq "@src";
        for my $m (grep { dig($doc, 'paths', $p, $_) } @src) {
            my $o = $doc->{paths}{$p}{$m};
            my $bearer = grep { exists $_->{bearerAuth} } @{ $o->{security} // $doc->{security} // [] };
            push @e, uc($m) . " $p: Bearer is " . ($routed{$p}{$m} ? 'needed' : 'not needed')
                if !$bearer != !$routed{$p}{$m};
        }
    }
    return @e;
}

# ---------------------------------------------------------------------------
# Answers against the document.
# ---------------------------------------------------------------------------

# The path template of a request URI, as nginx and the router see it: a
# raw URI under /api/data/ is a key (with no key, the collection); otherwise the percent-decoded path
# with slashes merged, dot segments resolved and a trailing slash
# dropped.  Returns (template or
# undef, normalised path).
sub template {
    my ($doc, $uri) = @_;
    return (undef, undef) unless defined $uri;
    $uri =~ s{^[A-Za-z][A-Za-z0-9+.-]*://[^/]*}{};
    my ($raw) = $uri =~ /^([^?]*)/;
    return ('/api/data', $raw) if $raw eq '/api/data/';
    return ($KEY_TPL, $raw) if index($raw, '/api/data/') == 0;
    (my $p = $raw) =~ s/%([0-9A-Fa-f]{2})/chr hex $1/ge;
    my @out;
    my @seg = split m{/+}, $p, -1;
    shift @seg;
    for my $i (0 .. $#seg) {
        my $last = $i == $#seg;
        if ($seg[$i] eq '.') { push @out, '' if $last }
        elsif ($seg[$i] eq '..') { pop @out; push @out, '' if $last }
        else { push @out, $seg[$i] }
    }
    my $n = '/' . join '/', @out;
    # A trailing slash is the same route (API.md, Transport).
    (my $route = $n) =~ s{(?<=.)/\z}{};
    return ($KEY_TPL, $n) if index($route, '/api/data/') == 0;
    return ('/api/sessions/{session_id}', $n)
        if $route =~ m{\A/api/sessions/[^/]+\z} && $doc->{paths}{'/api/sessions/{session_id}'};
    return ($doc->{paths}{$route} ? $route : undef, $n);
}

# Methods nginx refuses itself, anywhere, with an Allow of every method
# the API answers somewhere.
my %NGINX_405 = (trace => 1, connect => 1);

# What a request that is no operation of the document may get (info
# description): 405 on a listed path, 404 elsewhere, a preflight for
# OPTIONS under /api/; and what any request may get.
sub fallback {
    my ($doc, $m, $tpl, $norm) = @_;
    my $R = sub { { '$ref' => "#/components/responses/$_[0]" } };
    my %r = (400 => $R->('BadRequest'), 413 => $R->('PayloadTooLarge'),
        500 => $R->('InternalServerError'), 503 => $R->('ServiceUnavailable'));
    return ({ 400 => $R->('BadRequest') }, 'an unparsable request') unless $m;
    if (defined $tpl) {
        $r{400} = $R->('KeyBadRequest') if $tpl eq $KEY_TPL;
        $r{405} = $R->('MethodNotAllowed');
        $r{429} = $R->('TooManyRequests')
            if grep { $tpl eq $_ } '/api/token', '/api/register', '/api/users/me', '/api/users/me/password';
        return (\%r, uc($m) . " $tpl (no such operation)");
    }
    if ($m eq 'options' && $norm =~ m{^/api/}) {
        $r{204} = $R->('Preflight');
        return (\%r, "OPTIONS $norm (preflight on an unknown path)");
    }
    $r{404} = $R->('NotFound');
    $r{405} = $R->('MethodNotAllowed') if $NGINX_405{$m};
    return (\%r, uc($m) . ' ' . show($norm, 300) . ' (unknown path)');
}

# The errors of one recorded answer {method, uri, status, headers, body,
# req_type, req_body} against the loaded document $vs; also returns the
# operation key "METHOD template status" for coverage.
sub check_answer {
    my ($vs, $rec) = @_;
    my $doc = $vs->data;
    my $m = lc($rec->{method} // '');
    my ($tpl, $norm) = template($doc, $rec->{uri});
    my $op = defined $tpl && $m ? $doc->{paths}{$tpl}{$m} : undef;
    my ($responses, $where) = $op ? ($op->{responses}, uc($m) . " $tpl")
        : fallback($doc, $m, $tpl, $norm);
    my $st = $rec->{status} // 'none';
    my $key = "$where $st";
    my $resp = deref($doc, $responses->{$st})
        or return ($key, "status $st is not documented (only " . join(', ', sort keys %$responses) . ')');
    my @e;
    my $h = $rec->{headers} || {};
    for my $name (sort keys %{ $resp->{headers} || {} }) {
        my $hd = deref($doc, $resp->{headers}{$name});
        my $v = $h->{ lc $name };
        if (!defined $v) {
            push @e, "header $name missing" if $hd->{required};
            next;
        }
        if (ref $v) {
            push @e, "header $name sent " . @$v . ' times';
            next;
        }
        $v += 0 if ($hd->{schema}{type} // '') eq 'integer' && $v =~ /^-?[0-9]+$/;
        push @e, map {"header $name: $_"} $vs->validate($v, $hd->{schema});
    }
    my $body = $rec->{body} // '';
    if ($m eq 'head' || !$resp->{content}) {
        push @e, 'a body where none belongs: ' . show($body, 300) if length $body;
    } else {
        push @e, 'Content-Type ' . show($h->{'content-type'}, 300) unless ($h->{'content-type'} // '') eq $CT;
        my $data = eval { $J->decode($body) };
        if ($@) {
            push @e, 'the body is not JSON: ' . show($body, 300);
        } else {
            my $schema = dig($resp, 'content', 'application/json', 'schema');
            push @e, $schema ? map({"body $_"} $vs->validate($data, $schema)) : 'no application/json schema';
            push @e, 'INVALID_TOKEN without WWW-Authenticate'
                if ref $data eq 'HASH' && ($data->{code} // '') eq 'INVALID_TOKEN' && !defined $h->{'www-authenticate'};
        }
    }
    if ($st eq '405' && !$NGINX_405{$m} && defined $tpl && !ref $h->{allow}) {
        my @want = sort map { uc } grep { $doc->{paths}{$tpl}{$_} } @METHODS;
        my @got = sort split /,\s*/, $h->{allow} // '';
        push @e, "Allow: @got, documented: @want" unless "@got" eq "@want";
    }
    # A request the server accepted must be one the document accepts.
    if ($op && $op->{requestBody} && $st =~ /^2/ && defined $rec->{req_body}) {
        my $data = eval { $J->decode($rec->{req_body}) };
        my $schema = dig(deref($doc, $op->{requestBody}), 'content', 'application/json', 'schema');
        push @e, map {"accepted request body $_"} $vs->validate($data, $schema) if $schema;
    }
    return ($key, @e);
}

# Check a list of records; one test per "METHOD template status" group.
# Returns the set of groups seen.
sub check_records {
    my ($vs, $name, @recs) = @_;
    my (%group, %bad, $skipped);
    for my $rec (@recs) {
        if (!defined $rec->{status} || $rec->{status} == 599) {    # no answer (HTTP::Tiny: 599)
            $skipped++;
            next;
        }
        my ($key, @e) = check_answer($vs, $rec);
        $group{$key}++;
        push @{ $bad{$key} }, [ $rec, @e ] if @e;
    }
    subtest $name => sub {
        plan skip_all => 'no records' unless %group;
        for my $key (sort keys %group) {
            ok !$bad{$key}, "$key ($group{$key})" or do {
                for (grep { defined } @{ $bad{$key} }[0 .. 2]) {
                    my ($rec, @e) = @$_;
                    diag sprintf "%s %s %s (%s):\n  %s", $rec->{method} // '-', show($rec->{uri}, 300),
                        $rec->{status}, $rec->{file} // '?', join "\n  ", @e;
                }
            };
        }
        note "$skipped records without an answer skipped" if $skipped;
    };
    return \%group;
}

sub read_records {
    my ($file) = @_;
    open my $fh, '<:raw', $file or return;
    my @recs;
    while (my $line = <$fh>) {
        last unless $line =~ /\n\z/;    # another file may be appending
        push @recs, $J->decode($line);
    }
    return @recs;
}

# ---------------------------------------------------------------------------
# The document.
# ---------------------------------------------------------------------------

my ($VS, $errors) = load_doc($DOC);
ok $VS && !@$errors, 'docs/openapi.json is valid OpenAPI 3.1 (JSON::Validator, OAS 3.1 schema)'
    or diag join "\n", @$errors;
unless ($VS) {
    done_testing;
    exit;
}

subtest 'the validator catches broken documents' => sub {
    my @cases = (
        [ 'a misspelt operation field', sub { $_[0]{paths}{'/api/data'}{get}{respones} = {} } ],
        [ 'a response without description', sub { delete $_[0]{components}{responses}{KeyNotFound}{description} } ],
        [ 'an unknown parameter location', sub { $_[0]{components}{parameters}{Limit}{in} = 'body' } ],
        [ 'a path parameter not required', sub { delete $_[0]{components}{parameters}{Key}{required} } ],
        [ 'a status that is no status', sub { $_[0]{paths}{'/api/health'}{get}{responses}{'2xx0'} = { description => 'x' } } ],
        [ 'a path item that is no object', sub { $_[0]{paths}{'/api/x'} = 5 } ],
        [ 'a security scheme without scheme', sub { delete $_[0]{components}{securitySchemes}{bearerAuth}{scheme} } ],
        [ 'openapi 3.1 in another spelling', sub { $_[0]{openapi} = '3.1' } ],
        [ 'a header with a misspelt field', sub { $_[0]{components}{headers}{ETag}{requird} = JSON::PP::true } ],
        [ 'a schema that is no schema', sub { $_[0]{components}{schemas}{Key} = 5 } ],
    );
    for (@cases) {
        my ($name, $break) = @$_;
        my $d = clone($DOC);
        $break->($d);
        my (undef, $e) = load_doc($d);
        ok @$e, "refused: $name" or diag 'no error';
    }
};

subtest 'Schema Objects use JSON Schema keywords only' => sub {
    my (@roots, @bad);
    schema_roots($DOC, '#', \@roots);
    lint_schema($_->[1], $_->[0], \@bad) for @roots;
    ok @roots > 50, scalar(@roots) . ' schemas';
    is_deeply \@bad, [], 'no unknown keyword' or diag join "\n", @bad;
    my @neg;
    lint_schema({ type => 'object', requried => ['x'] }, 'x', \@neg);
    ok @neg, 'a misspelt keyword is caught';
};

subtest 'the document agrees with the contract' => sub {
    my @e = semantic_errors($DOC);
    is_deeply \@e, [], 'templates, operation ids, error table, HEAD, OPTIONS, Bearer' or diag join "\n", @e;
    my $d = clone($DOC);
    $d->{components}{schemas}{KeyNotFoundError}{allOf}[1]{properties}{message}{const} = 'Not here.';
    $d->{paths}{'/api/data'}{get}{responses}{409} = { '$ref' => '#/components/responses/KeyNotFound' };
    delete $d->{paths}{'/api/health'}{head};
    delete $d->{paths}{'/api/token'}{delete}{responses}{401};
    my @neg = semantic_errors($d);
    is scalar(@neg), 5, 'caught: a changed message, a 404 code as 409, HEAD unlike GET (twice), 401 missing'
        or diag join "\n", @neg;
    @e = router_errors($DOC);
    is_deeply \@e, [], 'every route of src/router.c and only those, Bearer where the router wants it'
        or diag join "\n", @e;
    $d = clone($DOC);
    delete $d->{paths}{'/api/token'}{delete};
    $d->{paths}{'/api/health'}{post} = $d->{paths}{'/api/health'}{get};
    @neg = router_errors($d);
    is scalar(@neg), 2, 'a missing and an invented operation are caught' or diag join "\n", @neg;
};

# ---------------------------------------------------------------------------
# The server: every operation and every status reachable from outside,
# recorded by KVTest into a file of our own.
# ---------------------------------------------------------------------------

my $SHARED = $ENV{KVAPI_OPENAPI_RECORD};
my $tmp = File::Temp->new(SUFFIX => '.jsonl');
$ENV{KVAPI_OPENAPI_RECORD} = $tmp->filename;

# A small byte quota, so that a write of 5 kB answers 507.
my $s = KVTest->start(workers => 2, quota_bytes => 4096);
my $U = $s->new_user('oas');
my $A = $s->auth($U->{token});
my $JSON_H = { 'Content-Type' => 'application/json' };

sub req {
    my ($m, $p, %o) = @_;
    return $s->request($m => $p, { headers => { %{ $o{auth} ? $A : {} }, %{ $o{h} || {} } },
        exists $o{json} ? (json => $o{json}) : (), exists $o{body} ? (body => $o{body}) : () });
}

# nginx's own errors, on any method and path: a request without Host
# (400 BAD_REQUEST), a body announced over the limit (413).
sub nginx_errors {
    my ($m, $p) = @_;
    $s->raw("$m $p HTTP/1.1\r\nConnection: close\r\n\r\n");
    $s->raw("$m $p HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n");
}

subtest 'GET /api/openapi.json is docs/openapi.json' => sub {
    my $r = req(GET => '/api/openapi.json');
    is $r->{status}, 200, 'status 200';
    is $r->{headers}{'content-type'}, $CT, 'Content-Type';
    ok $r->{body} eq $DOC_TEXT, 'the same bytes as the file' or diag 'served ' . length($r->{body}) . ' bytes';
    my $etag = $r->{headers}{etag};
    ok defined $etag, 'ETag (nginx)';
    is req(GET => '/api/openapi.json', h => { 'If-None-Match' => $etag })->{status}, 304, 'If-None-Match: 304';
    is $s->raw("HEAD /api/openapi.json HTTP/1.1\r\nHost: x\r\nIf-None-Match: $etag\r\nConnection: close\r\n\r\n")->{status},
        304, 'HEAD with If-None-Match: 304';
    is $s->raw("HEAD /api/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")->{status}, 200, 'HEAD: 200';
    nginx_errors($_, '/api/openapi.json') for qw(GET HEAD);
};

my $E;    # an ETag of key 'k'
subtest 'drive every operation' => sub {
    # POST /api/register
    my $n = "oas_$$";
    my %reg = (username => $n, email => "$n\@example.com", password => 'correct horse', full_name => 'O A S');
    is req(POST => '/api/register', json => { %reg, age => 30, gender => 'x' })->{status}, 201, 'register';
    req(POST => '/api/register', json => { %reg, username => "${n}2", email => "${n}2\@example.com" });
    req(POST => '/api/register', json => { %reg, username => 'x' });
    req(POST => '/api/register', json => { %reg, password => 'short' });
    req(POST => '/api/register', json => { %reg, age => 0 });
    req(POST => '/api/register', json => { %reg, gender => '' });
    req(POST => '/api/register', json => \%reg);
    req(POST => '/api/register', json => { %reg, username => "${n}3" });
    req(POST => '/api/register', body => '{', h => $JSON_H);
    req(POST => '/api/register', body => '{}', h => { 'Content-Type' => 'text/plain' });
    # POST /api/token
    is req(POST => '/api/token', json => { username => $n, password => 'correct horse' })->{status}, 200, 'log in';
    req(POST => '/api/token', json => { username => $n });
    req(POST => '/api/token', json => { username => $n, password => 'wrong horse' });
    req(POST => '/api/token', body => '[]', h => $JSON_H);
    req(POST => '/api/token', body => 'x', h => { 'Content-Type' => 'text/plain' });
    # DELETE /api/token
    my $t = req(POST => '/api/token', json => { username => $n, password => 'correct horse' })->{json}{data}{access_token};
    is req(DELETE => '/api/token', h => { Authorization => "Bearer $t" })->{status}, 200, 'log out';
    is req(DELETE => '/api/token', h => { Authorization => "Bearer $t" })->{status}, 401, 'log out again';
    req(DELETE => '/api/token');
    # POST /api/data
    my $r = req(POST => '/api/data', auth => 1, json => { key => 'k', value => { a => [ 1, 'b', JSON::PP::true ] } });
    is $r->{status}, 201, 'store';
    $E = $r->{headers}{etag};
    req(POST => '/api/data', auth => 1, json => { key => 'k', value => 1 });
    req(POST => '/api/data', auth => 1, json => { key => "a\x01", value => 1 });
    req(POST => '/api/data', auth => 1, json => { key => 'v', value => undef });
    req(POST => '/api/data', auth => 1, body => '{"key":"x","key":"y","value":1}', h => $JSON_H);
    req(POST => '/api/data', auth => 1, body => '{}', h => { 'Content-Type' => 'text/plain' });
    req(POST => '/api/data', json => { key => 'k', value => 1 });
    req(POST => '/api/data', auth => 1, json => { key => "$_ ☃/%?#", value => $_ }) for 1 .. 3;
    # GET, HEAD /api/data
    $r = req(GET => '/api/data?limit=2', auth => 1);
    is $r->{status}, 200, 'list';
    req(GET => '/api/data?cursor=' . $r->{json}{data}{next_cursor} . '&prefix=', auth => 1);
    req(GET => '/api/data?limit=0', auth => 1);
    req(GET => '/api/data');
    req(HEAD => '/api/data', auth => 1);
    req(HEAD => '/api/data?limit=x', auth => 1);
    req(HEAD => '/api/data');
    # GET, HEAD /api/data/{key}
    is req(GET => '/api/data/k', auth => 1)->{status}, 200, 'read';
    is req(GET => '/api/data/k', auth => 1, h => { 'If-None-Match' => $E })->{status}, 304, 'read: 304';
    req(GET => '/api/data/1%20%E2%98%83%2F%25%3F%23', auth => 1);
    req(GET => '/api/data/nope', auth => 1);
    req(GET => '/api/data/k');
    req(GET => '/api/data/%01', auth => 1);
    $s->raw("GET /api/data/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    for my $h ({}, { 'If-None-Match' => $E }) {
        req(HEAD => '/api/data/k', auth => 1, h => $h);
    }
    req(HEAD => '/api/data/nope', auth => 1);
    req(HEAD => '/api/data/k');
    req(HEAD => '/api/data/%01', auth => 1);
    # PUT /api/data/{key}
    $r = req(PUT => '/api/data/k', auth => 1, json => { value => 2 }, h => { 'If-Match' => $E });
    is $r->{status}, 200, 'update';
    req(PUT => '/api/data/k', auth => 1, json => { value => 3 }, h => { 'If-Match' => $E });
    $E = $r->{headers}{etag};
    req(PUT => '/api/data/nope', auth => 1, json => { value => 3 });
    req(PUT => '/api/data/k', auth => 1, json => { value => undef });
    req(PUT => '/api/data/k', auth => 1, body => '[', h => $JSON_H);
    req(PUT => '/api/data/%01', auth => 1, json => { value => 3 });
    req(PUT => '/api/data/k', auth => 1, body => 'x', h => { 'Content-Type' => 'text/plain' });
    req(PUT => '/api/data/k', json => { value => 3 });
    # The data lifecycle: a ttl, merge patches, the quota (4096 bytes).
    my $big = 'x' x 5000;
    is req(POST => '/api/data', auth => 1, json => { key => 't', value => 1, ttl => 60 })->{status}, 201, 'store with a ttl';
    is req(GET => '/api/data/t', auth => 1)->{json}{data}{expires_at} =~ /Z\z/ ? 1 : 0, 1, 'read: expires_at';
    req(GET => '/api/data?prefix=t', auth => 1);
    req(POST => '/api/data', auth => 1, json => { key => 'q', value => 1, ttl => 0 });
    req(POST => '/api/data', auth => 1, json => { key => 'q', value => $big });
    req(PUT => '/api/data/k', auth => 1, json => { value => 1, ttl => 1.5 });
    req(PUT => '/api/data/k', auth => 1, json => { value => $big });
    my $MP = { 'Content-Type' => 'application/merge-patch+json' };
    $r = req(PATCH => '/api/data/k', auth => 1, body => '{"a":1}', h => { %$MP, 'If-Match' => $E });
    is $r->{status}, 200, 'patch';
    req(PATCH => '/api/data/k', auth => 1, body => '{"a":2}', h => { %$MP, 'If-Match' => $E });
    $E = $r->{headers}{etag};
    req(PATCH => '/api/data/k', auth => 1, body => '[1]', h => $JSON_H);
    req(PATCH => '/api/data/k', auth => 1, body => 'null', h => $MP);
    req(PATCH => '/api/data/k', auth => 1, body => '{', h => $MP);
    req(PATCH => '/api/data/k', auth => 1, body => qq({"b":"$big"}), h => $MP);
    req(PATCH => '/api/data/nope', auth => 1, body => '{}', h => $MP);
    req(PATCH => '/api/data/%01', auth => 1, body => '{}', h => $MP);
    req(PATCH => '/api/data/k', auth => 1, body => '{}', h => { 'Content-Type' => 'text/plain' });
    req(PATCH => '/api/data/k', body => '{}', h => $MP);
    $E = req(GET => '/api/data/k', auth => 1)->{headers}{etag};
    # POST /api/batch
    my $B = sub { req(POST => '/api/batch', auth => 1, json => { ops => $_[0] }) };
    is $B->([ { op => 'get', key => 'k' }, { op => 'put', key => 'k', value => 5 }, { op => 'check', key => 'k', if_match => '*' },
        { op => 'create', key => 'bt', value => 1 }, { op => 'delete', key => 'bt' } ])->{status}, 200, 'a batch';
    $B->([]);
    $B->([ { op => 'get', key => '' } ]);
    $B->([ { op => 'create', key => 'x', value => undef } ]);
    $B->([ { op => 'create', key => 'x', value => 1, ttl => 0 } ]);
    $B->([ { op => 'get', key => 'nope' } ]);
    $B->([ { op => 'create', key => 'k', value => 1 } ]);
    $B->([ { op => 'check', key => 'k', if_match => undef } ]);
    $B->([ { op => 'create', key => 'q', value => $big } ]);
    req(POST => '/api/batch', auth => 1, body => '{', h => $JSON_H);
    req(POST => '/api/batch', auth => 1, body => '{}', h => { 'Content-Type' => 'text/plain' });
    req(POST => '/api/batch', json => { ops => [] });
    $E = req(GET => '/api/data/k', auth => 1)->{headers}{etag};
    # GET, HEAD /api/changes
    is req(GET => '/api/changes?since=1&limit=2', auth => 1)->{status}, 200, 'the change feed';
    req(GET => '/api/changes?since=x', auth => 1);
    req(GET => '/api/changes?since=999999', auth => 1);
    req(GET => '/api/changes');
    req(HEAD => '/api/changes', auth => 1);
    req(HEAD => '/api/changes?limit=0', auth => 1);
    req(HEAD => '/api/changes?since=999999', auth => 1);
    req(HEAD => '/api/changes');
    # DELETE /api/data/{key}
    req(DELETE => '/api/data/k', auth => 1, h => { 'If-Match' => '"0000000000000000"' });
    is req(DELETE => '/api/data/k', auth => 1, h => { 'If-Match' => $E })->{status}, 200, 'delete';
    req(DELETE => '/api/data/k', auth => 1);
    req(DELETE => '/api/data/%01', auth => 1);
    req(DELETE => '/api/data/k');
    # GET, HEAD /api/health
    is req(GET => '/api/health')->{status}, 200, 'health';
    req(HEAD => '/api/health');
    # OPTIONS, nginx's errors, 405 and 404 everywhere
    for my $p ('/api/register', '/api/token', '/api/data', '/api/data/k', '/api/health', '/api/nope',
               '/api/users/me', '/api/users/me/password', '/api/sessions', '/api/sessions/x', '/api/changes',
               '/api/batch') {
        $s->raw("OPTIONS $p HTTP/1.1\r\nHost: x\r\nOrigin: http://example.com\r\n"
            . "Access-Control-Request-Method: PUT\r\nAccess-Control-Request-Headers: authorization, content-type\r\n"
            . "Connection: close\r\n\r\n");
        nginx_errors($_, $p) for qw(OPTIONS GET HEAD POST PUT DELETE PATCH);
    }
    $s->raw("OPTIONS /api/data/%zz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    req($_, '/api/register') for qw(GET HEAD PUT DELETE PATCH);
    req($_, '/api/token') for qw(GET HEAD PUT PATCH);
    req($_, '/api/data') for qw(PUT DELETE PATCH);
    req($_, '/api/data/k') for qw(POST PATCH);
    req($_, '/api/health') for qw(POST PUT DELETE PATCH);
    req($_, '/api/users/me') for qw(POST PUT);
    req($_, '/api/users/me/password') for qw(GET POST DELETE PATCH);
    req($_, '/api/sessions') for qw(POST PUT PATCH);
    req($_, '/api/sessions/x') for qw(GET POST PUT PATCH);
    req($_, '/api/nope') for qw(GET POST);
    req(GET => '/nope');
    $s->raw("TRACE /api/data HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    $s->raw("GARBAGE\r\n\r\n");
};

# The account and session operations of issue 14, with every status and
# code they answer from outside (ACCOUNT_DISABLED by SQL, as its tests).
subtest 'drive the account and session operations' => sub {
    my $n = "oasme_$$";
    my $login = sub {
        my ($pw) = @_;
        my $r = req(POST => '/api/token', json => { username => $n, password => $pw });
        return { %{ ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {} }, status => $r->{status} };
    };
    my $bearer = sub { { Authorization => 'Bearer ' . ($_[0]{access_token} // 'x') } };
    is req(POST => '/api/register', json => { username => $n, email => "$n\@example.com", password => 'correct horse',
        full_name => 'O A S Me', age => 20, gender => 'x' })->{status}, 201, 'register';
    my $t = $login->('correct horse');
    is $t->{status}, 200, 'log in';
    # POST /api/token: the refresh grant and its refusals, the lock-out, a disabled account.
    my $r = req(POST => '/api/token', json => { grant_type => 'refresh_token', refresh_token => $t->{refresh_token} });
    is $r->{status}, 200, 'refresh';
    my $M = $bearer->($r->{json}{data} // {});
    req(POST => '/api/token', json => { grant_type => 'refresh_token', refresh_token => 'A' x 43 });
    req(POST => '/api/token', json => { grant_type => 'client_credentials' });
    req(POST => '/api/token', json => { username => "oasghost_$$", password => "wrong horse $_" }) for 1 .. 5;
    is req(POST => '/api/token', json => { username => "oasghost_$$", password => 'x' })->{status}, 429, 'locked out';
    my $d = "oasdis_$$";
    req(POST => '/api/register', json => { username => $d, email => "$d\@example.com", password => 'correct horse', full_name => 'D' });
    ok eval { $s->sql("UPDATE users SET disabled_at = UTC_TIMESTAMP(6) WHERE username = '$d'"); 1 }, 'disable an account' or diag $@;
    is req(POST => '/api/token', json => { username => $d, password => 'correct horse' })->{status}, 403, 'disabled';
    # GET, HEAD, PATCH /api/users/me
    is req(GET => '/api/users/me', h => $M)->{status}, 200, 'profile';
    req(GET => '/api/users/me/', h => $M);
    req(GET => '/api/users/me');
    req(HEAD => '/api/users/me', h => $M);
    req(HEAD => '/api/users/me');
    is req(PATCH => '/api/users/me', h => $M, json => { full_name => 'New Name', age => undef, gender => 'y' })->{status},
        200, 'change the profile';
    req(PATCH => '/api/users/me', h => $M, json => { username => 'x' });
    req(PATCH => '/api/users/me', h => $M, json => { age => 0 });
    req(PATCH => '/api/users/me', h => $M, json => { email => $U->{email} });
    req(PATCH => '/api/users/me', h => { %$M, 'Content-Type' => 'text/plain' }, body => '{}');
    req(PATCH => '/api/users/me', json => {});
    # PUT /api/users/me/password
    req(PUT => '/api/users/me/password', h => $M, json => {});
    req(PUT => '/api/users/me/password', h => $M, json => { current_password => 'correct horse', new_password => 'short' });
    req(PUT => '/api/users/me/password', h => $M, json => { current_password => 'wrong horse', new_password => 'a new horse' });
    req(PUT => '/api/users/me/password', h => { %$M, 'Content-Type' => 'text/plain' }, body => '{}');
    req(PUT => '/api/users/me/password', json => {});
    is req(PUT => '/api/users/me/password', h => $M, json => { current_password => 'correct horse', new_password => 'a new horse' })->{status},
        200, 'change the password';
    # GET, HEAD, DELETE /api/sessions and /api/sessions/{session_id}
    my $t2 = $login->('a new horse');
    is req(GET => '/api/sessions', h => $M)->{status}, 200, 'sessions';
    req(GET => '/api/sessions/', h => $M);
    req(GET => '/api/sessions');
    req(HEAD => '/api/sessions', h => $M);
    req(HEAD => '/api/sessions');
    is req(DELETE => '/api/sessions/' . ($t2->{session_id} // 'x'), h => $M)->{status}, 200, 'revoke a session';
    req(DELETE => '/api/sessions/' . ($t2->{session_id} // 'x'), h => $M);
    req(DELETE => '/api/sessions/x');
    $login->('a new horse');
    is req(DELETE => '/api/sessions', h => $M)->{status}, 200, 'revoke the other sessions';
    req(DELETE => '/api/sessions');
    # DELETE /api/users/me
    req(DELETE => '/api/users/me', h => $M, json => { password => 'wrong horse' });
    req(DELETE => '/api/users/me', h => { %$M, 'Content-Type' => 'application/json' }, body => '[');
    req(DELETE => '/api/users/me', h => { %$M, 'Content-Type' => 'text/plain' }, body => '{}');
    req(DELETE => '/api/users/me', json => { password => 'a new horse' });
    is req(DELETE => '/api/users/me', h => $M, json => { password => 'a new horse' })->{status}, 200, 'delete the account';
};

# The account routes without a database (the login rate limit is the
# next subtest's).
subtest '503 SERVICE_UNAVAILABLE on the account and session routes' => sub {
    $s->restart_app(db_socket => $s->dir . '/no-such.sock');
    my $B = { Authorization => 'Bearer ' . 'A' x 43 };
    req(POST => '/api/token', json => { grant_type => 'refresh_token', refresh_token => 'A' x 43 });
    is req(GET => '/api/users/me', h => $B)->{status}, 503, 'profile: 503';
    req(HEAD => '/api/users/me', h => $B);
    req(PATCH => '/api/users/me', h => $B, json => {});
    req(DELETE => '/api/users/me', h => $B, json => { password => 'correct horse' });
    req(PUT => '/api/users/me/password', h => $B, json => { current_password => 'correct horse', new_password => 'a new horse' });
    is req(GET => '/api/sessions', h => $B)->{status}, 503, 'sessions: 503';
    req(HEAD => '/api/sessions', h => $B);
    req(DELETE => '/api/sessions', h => $B);
    req(DELETE => '/api/sessions/' . 'A' x 22, h => $B);
};

subtest '503 SERVICE_UNAVAILABLE (no database) and 429 TOO_MANY_REQUESTS' => sub {
    # The workers cannot reach their database, and logins are limited to
    # three at once.
    $s->restart_app(db_socket => $s->dir . '/no-such.sock', auth_rate => '1r/m', auth_burst => 2);
    my $n = "oas503_$$";
    is req(POST => '/api/register', json => { username => $n, email => "$n\@example.com",
        password => 'correct horse', full_name => 'O' })->{status}, 503, 'register: 503';
    is req(POST => '/api/token', json => { username => $n, password => 'correct horse' })->{status}, 503, 'token: 503';
    is req(DELETE => '/api/token', auth => 1)->{status}, 503, 'log out: 503';
    # Preflights are never limited, nor counted (t/52-rate-limit.t).
    is req(OPTIONS => '/api/token')->{status}, 204, 'a preflight past the limit: 204';
    is req(OPTIONS => '/api/register')->{status}, 204, 'a preflight past the limit: 204';
    is req(POST => '/api/register', json => {})->{status}, 429, 'the fourth login request: 429';
    req(POST => '/api/token', json => {});
    req(DELETE => '/api/token', auth => 1);
    req(GET => '/api/token');
    req(PUT => '/api/users/me/password', auth => 1, json => { current_password => 'x', new_password => 'a new horse' }) for 1 .. 4;
    req(DELETE => '/api/users/me', auth => 1, json => { password => 'x' }) for 1 .. 4;
    req(POST => '/api/data', auth => 1, json => { key => 'k', value => 1 });
    req(GET => '/api/data', auth => 1);
    req(HEAD => '/api/data', auth => 1);
    req($_ => '/api/data/k', auth => 1) for qw(GET HEAD DELETE);
    req(PUT => '/api/data/k', auth => 1, json => { value => 1 });
    req(PATCH => '/api/data/k', auth => 1, json => { a => 1 });
    req($_ => '/api/changes', auth => 1) for qw(GET HEAD);
    req(POST => '/api/batch', auth => 1, json => { ops => [ { op => 'get', key => 'k' } ] });
    my $r = req(GET => '/api/health');
    is $r->{status}, 503, 'health: 503';
    req(HEAD => '/api/health');
};

# The static file served by nginx keeps the contract too.
subtest 'GET /api/openapi.json: the contract for the static file' => sub {
    my @cases = (
        [ 'OPTIONS is a preflight (API.md: OPTIONS on any /api path)',
          "OPTIONS /api/openapi.json HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 'OPTIONS' ],
        [ 'POST: 405 with Allow: GET, HEAD, OPTIONS',
          "POST /api/openapi.json HTTP/1.1\r\nHost: x\r\nContent-Length: 0\r\nConnection: close\r\n\r\n", 'POST' ],
        [ 'a failed If-Match: 412 PRECONDITION_FAILED in JSON',
          "GET /api/openapi.json HTTP/1.1\r\nHost: x\r\nIf-Match: \"nope\"\r\nConnection: close\r\n\r\n", 'GET' ],
        [ 'Range is ignored: the whole document (no 206/416, no HTML)',
          "GET /api/openapi.json HTTP/1.1\r\nHost: x\r\nRange: bytes=999999-\r\nConnection: close\r\n\r\n", 'GET' ],
        [ 'HEAD with a failed If-Match: 412',
          "HEAD /api/openapi.json HTTP/1.1\r\nHost: x\r\nIf-Match: \"nope\"\r\nConnection: close\r\n\r\n", 'HEAD' ],
        [ 'OPTIONS with a body over the limit: 413',
          "OPTIONS /api/openapi.json HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999\r\nConnection: close\r\n\r\n", 'OPTIONS' ],
        [ 'OPTIONS with a header nginx cannot parse: 400',
          "OPTIONS /api/openapi.json HTTP/1.1\r\nHost: x\r\nBad Header: y\r\nConnection: close\r\n\r\n", 'OPTIONS' ],
    );
    for (@cases) {
        my ($name, $bytes, $m) = @$_;
        my $r = $s->raw($bytes);
        my (undef, @e) = check_answer($VS, { method => $m, uri => '/api/openapi.json', %$r });
        ok !@e, $name or diag "status $r->{status}: @e";
    }
};

my @OWN = read_records($tmp->filename);
my $seen = check_records($VS, 'every answer of this file matches the document', @OWN);

subtest 'every documented status was seen' => sub {
    # Not reachable from outside: 500 (an internal fault), 503 where only a
    # dead worker pool or nginx itself gives it (preflight, the static file).
    my %doc;
    for my $op (operations($DOC)) {
        my ($p, $m, $o) = @$op;
        for my $st (keys %{ $o->{responses} }) {
            next if $st eq '500';
            next if $st eq '503' && ($m eq 'options' || $p eq '/api/openapi.json');
            $doc{ uc($m) . " $p $st" } = 1;
        }
    }
    my @missing = grep { !$seen->{$_} } sort keys %doc;
    is_deeply \@missing, [], scalar(keys %doc) . ' operation statuses' or diag "not seen: @missing";
    my @codes;
    for my $rec (@OWN) {
        my $j = eval { $J->decode($rec->{body} // '') };
        push @codes, $j->{code} if ref $j eq 'HASH' && $j->{code};
    }
    my %c = map { $_ => 1 } @codes;
    my @no = grep { !$c{$_} && $_ ne 'INTERNAL_SERVER_ERROR' } sort keys %KVTest::ERRORS;
    is_deeply \@no, [], 'every error code but INTERNAL_SERVER_ERROR was answered' or diag "@no";
};

subtest 'the answer checks refuse wrong answers' => sub {
    my ($get) = grep { ($_->{method} // '') eq 'GET' && $_->{uri} eq '/api/data/k' && $_->{status} == 200 } @OWN;
    my ($post) = grep { ($_->{method} // '') eq 'POST' && $_->{uri} eq '/api/data' && $_->{status} == 201 } @OWN;
    my ($e401) = grep { ($_->{method} // '') eq 'GET' && $_->{uri} eq '/api/data/k' && $_->{status} == 401 } @OWN;
    my ($e405) = grep { ($_->{method} // '') eq 'PATCH' && $_->{uri} eq '/api/data' && $_->{status} == 405 } @OWN;
    my ($list) = grep { ($_->{method} // '') eq 'GET' && $_->{uri} =~ m{^/api/data\?limit=2} && $_->{status} == 200 } @OWN;
    ok $get && $post && $e401 && $e405 && $list, 'records to spoil' or return;
    my $body = sub { my ($r, $f) = @_; my $c = clone($r); my $j = $J->decode($c->{body}); $f->($j); $c->{body} = $J->encode($j); $c };
    my @cases = (
        [ 'a member too many', $body->($get, sub { $_[0]{data}{extra} = 1 }) ],
        [ 'a member missing', $body->($get, sub { delete $_[0]{data}{value} }) ],
        [ 'a null value', $body->($get, sub { $_[0]{data}{value} = undef }) ],
        [ 'status "ok"', $body->($post, sub { $_[0]{status} = 'ok' }) ],
        [ 'another message', $body->($post, sub { $_[0]{message} = 'Stored.' }) ],
        [ 'a message on a read', $body->($get, sub { $_[0]{message} = 'Here.' }) ],
        [ 'a code of another status', $body->($e401, sub { $_[0]{code} = 'INVALID_KEY'; $_[0]{message} = $KVTest::ERRORS{INVALID_KEY}[1] }) ],
        [ 'a code the contract lacks', $body->($e401, sub { $_[0]{code} = 'UNAUTHORIZED' }) ],
        [ 'data on an error', $body->($e401, sub { $_[0]{data} = {} }) ],
        [ 'next_cursor missing', $body->($list, sub { delete $_[0]{data}{next_cursor} }) ],
        [ 'next_cursor a number', $body->($list, sub { $_[0]{data}{next_cursor} = 1 }) ],
        [ 'an undocumented status', { %{ clone($get) }, status => 418 } ],
        [ 'a 404 on a list', { %{ clone($e401) }, uri => '/api/data', status => 404 } ],
        [ 'ETag missing', do { my $c = clone($get); delete $c->{headers}{etag}; $c } ],
        [ 'a weak ETag', do { my $c = clone($post); $c->{headers}{etag} = "W/$c->{headers}{etag}"; $c } ],
        [ 'Location missing', do { my $c = clone($post); delete $c->{headers}{location}; $c } ],
        [ 'WWW-Authenticate missing', do { my $c = clone($e401); delete $c->{headers}{'www-authenticate'}; $c } ],
        [ 'Allow that lists PUT', do { my $c = clone($e405); $c->{headers}{allow} .= ', PUT'; $c } ],
        [ 'another Content-Type', do { my $c = clone($get); $c->{headers}{'content-type'} = 'text/html'; $c } ],
        [ 'a body that is not JSON', do { my $c = clone($get); $c->{body} = '<html>'; $c } ],
        [ 'a body on HEAD', { %{ clone($get) }, method => 'HEAD' } ],
        [ 'a refused request body on a 2xx', { %{ clone($post) }, req_body => '{"key":"k"}' } ],
    );
    for (@cases) {
        my ($name, $rec) = @$_;
        my (undef, @e) = check_answer($VS, $rec);
        ok @e, "refused: $name" or diag "no error for $name";
    }
    my (undef, @e) = check_answer($VS, $get);
    is_deeply \@e, [], 'the unspoilt answer passes';
};

$s->stop;

if (defined $SHARED && -s $SHARED) {
    my @recs = read_records($SHARED);
    my %files;
    $files{ $_->{file} // '?' }++ for @recs;
    note 'records of ' . join(', ', map {"$_ ($files{$_})"} sort keys %files);
    check_records($VS, 'every recorded answer of the other test files matches the document', @recs);
} else {
    note 'KVAPI_OPENAPI_RECORD names no records of other test files: checked only our own answers';
}

done_testing;

__DATA__
{"$id":"https://spec.openapis.org/oas/3.1/schema/2022-10-07",
"$schema":"https://json-schema.org/draft/2020-12/schema",
"description":"The description of OpenAPI v3.1.x documents without schema validation, as defined by https://spec.openapis.org/oas/v3.1.0",
"type":"object",
"properties":{"openapi":{"type":"string","pattern":"^3\\.1\\.\\d+(-.+)?$"},"info":{"$ref":"#/$defs/info"},"jsonSchemaDialect":{"type":"string","format":"uri","default":"https://spec.openapis.org/oas/3.1/dialect/base"},"servers":{"type":"array","items":{"$ref":"#/$defs/server"},"default":[{"url":"/"}]},"paths":{"$ref":"#/$defs/paths"},"webhooks":{"type":"object","additionalProperties":{"$ref":"#/$defs/path-item-or-reference"}},"components":{"$ref":"#/$defs/components"},"security":{"type":"array","items":{"$ref":"#/$defs/security-requirement"}},"tags":{"type":"array","items":{"$ref":"#/$defs/tag"}},"externalDocs":{"$ref":"#/$defs/external-documentation"}},
"required":["openapi","info"],
"anyOf":[{"required":["paths"]},{"required":["components"]},{"required":["webhooks"]}],
"$ref":"#/$defs/specification-extensions",
"unevaluatedProperties":false,
"$defs":{
"info":{"$comment":"https://spec.openapis.org/oas/v3.1.0#info-object","type":"object","properties":{"title":{"type":"string"},"summary":{"type":"string"},"description":{"type":"string"},"termsOfService":{"type":"string","format":"uri"},"contact":{"$ref":"#/$defs/contact"},"license":{"$ref":"#/$defs/license"},"version":{"type":"string"}},"required":["title","version"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"contact":{"$comment":"https://spec.openapis.org/oas/v3.1.0#contact-object","type":"object","properties":{"name":{"type":"string"},"url":{"type":"string","format":"uri"},"email":{"type":"string","format":"email"}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"license":{"$comment":"https://spec.openapis.org/oas/v3.1.0#license-object","type":"object","properties":{"name":{"type":"string"},"identifier":{"type":"string"},"url":{"type":"string","format":"uri"}},"required":["name"],"dependentSchemas":{"identifier":{"not":{"required":["url"]}}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"server":{"$comment":"https://spec.openapis.org/oas/v3.1.0#server-object","type":"object","properties":{"url":{"type":"string","format":"uri-reference"},"description":{"type":"string"},"variables":{"type":"object","additionalProperties":{"$ref":"#/$defs/server-variable"}}},"required":["url"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"server-variable":{"$comment":"https://spec.openapis.org/oas/v3.1.0#server-variable-object","type":"object","properties":{"enum":{"type":"array","items":{"type":"string"},"minItems":1},"default":{"type":"string"},"description":{"type":"string"}},"required":["default"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"components":{"$comment":"https://spec.openapis.org/oas/v3.1.0#components-object","type":"object","properties":{"schemas":{"type":"object","additionalProperties":{"$dynamicRef":"#meta"}},"responses":{"type":"object","additionalProperties":{"$ref":"#/$defs/response-or-reference"}},"parameters":{"type":"object","additionalProperties":{"$ref":"#/$defs/parameter-or-reference"}},"examples":{"type":"object","additionalProperties":{"$ref":"#/$defs/example-or-reference"}},"requestBodies":{"type":"object","additionalProperties":{"$ref":"#/$defs/request-body-or-reference"}},"headers":{"type":"object","additionalProperties":{"$ref":"#/$defs/header-or-reference"}},"securitySchemes":{"type":"object","additionalProperties":{"$ref":"#/$defs/security-scheme-or-reference"}},"links":{"type":"object","additionalProperties":{"$ref":"#/$defs/link-or-reference"}},"callbacks":{"type":"object","additionalProperties":{"$ref":"#/$defs/callbacks-or-reference"}},"pathItems":{"type":"object","additionalProperties":{"$ref":"#/$defs/path-item-or-reference"}}},"patternProperties":{"^(schemas|responses|parameters|examples|requestBodies|headers|securitySchemes|links|callbacks|pathItems)$":{"$comment":"Enumerating all of the property names in the regex above is necessary for unevaluatedProperties to work as expected","propertyNames":{"pattern":"^[a-zA-Z0-9._-]+$"}}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"paths":{"$comment":"https://spec.openapis.org/oas/v3.1.0#paths-object","type":"object","patternProperties":{"^/":{"$ref":"#/$defs/path-item"}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"path-item":{"$comment":"https://spec.openapis.org/oas/v3.1.0#path-item-object","type":"object","properties":{"summary":{"type":"string"},"description":{"type":"string"},"servers":{"type":"array","items":{"$ref":"#/$defs/server"}},"parameters":{"type":"array","items":{"$ref":"#/$defs/parameter-or-reference"}},"get":{"$ref":"#/$defs/operation"},"put":{"$ref":"#/$defs/operation"},"post":{"$ref":"#/$defs/operation"},"delete":{"$ref":"#/$defs/operation"},"options":{"$ref":"#/$defs/operation"},"head":{"$ref":"#/$defs/operation"},"patch":{"$ref":"#/$defs/operation"},"trace":{"$ref":"#/$defs/operation"}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"path-item-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/path-item"}},
"operation":{"$comment":"https://spec.openapis.org/oas/v3.1.0#operation-object","type":"object","properties":{"tags":{"type":"array","items":{"type":"string"}},"summary":{"type":"string"},"description":{"type":"string"},"externalDocs":{"$ref":"#/$defs/external-documentation"},"operationId":{"type":"string"},"parameters":{"type":"array","items":{"$ref":"#/$defs/parameter-or-reference"}},"requestBody":{"$ref":"#/$defs/request-body-or-reference"},"responses":{"$ref":"#/$defs/responses"},"callbacks":{"type":"object","additionalProperties":{"$ref":"#/$defs/callbacks-or-reference"}},"deprecated":{"default":false,"type":"boolean"},"security":{"type":"array","items":{"$ref":"#/$defs/security-requirement"}},"servers":{"type":"array","items":{"$ref":"#/$defs/server"}}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"external-documentation":{"$comment":"https://spec.openapis.org/oas/v3.1.0#external-documentation-object","type":"object","properties":{"description":{"type":"string"},"url":{"type":"string","format":"uri"}},"required":["url"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"parameter":{"$comment":"https://spec.openapis.org/oas/v3.1.0#parameter-object","type":"object","properties":{"name":{"type":"string"},"in":{"enum":["query","header","path","cookie"]},"description":{"type":"string"},"required":{"default":false,"type":"boolean"},"deprecated":{"default":false,"type":"boolean"},"schema":{"$dynamicRef":"#meta"},"content":{"$ref":"#/$defs/content","minProperties":1,"maxProperties":1}},"required":["name","in"],"oneOf":[{"required":["schema"]},{"required":["content"]}],"if":{"properties":{"in":{"const":"query"}},"required":["in"]},"then":{"properties":{"allowEmptyValue":{"default":false,"type":"boolean"}}},"dependentSchemas":{"schema":{"properties":{"style":{"type":"string"},"explode":{"type":"boolean"}},"allOf":[{"$ref":"#/$defs/examples"},{"$ref":"#/$defs/parameter/dependentSchemas/schema/$defs/styles-for-path"},{"$ref":"#/$defs/parameter/dependentSchemas/schema/$defs/styles-for-header"},{"$ref":"#/$defs/parameter/dependentSchemas/schema/$defs/styles-for-query"},{"$ref":"#/$defs/parameter/dependentSchemas/schema/$defs/styles-for-cookie"},{"$ref":"#/$defs/parameter/dependentSchemas/schema/$defs/styles-for-form"}],"$defs":{"styles-for-path":{"if":{"properties":{"in":{"const":"path"}},"required":["in"]},"then":{"properties":{"name":{"pattern":"[^/#?]+$"},"style":{"default":"simple","enum":["matrix","label","simple"]},"required":{"const":true}},"required":["required"]}},"styles-for-header":{"if":{"properties":{"in":{"const":"header"}},"required":["in"]},"then":{"properties":{"style":{"default":"simple","const":"simple"}}}},"styles-for-query":{"if":{"properties":{"in":{"const":"query"}},"required":["in"]},"then":{"properties":{"style":{"default":"form","enum":["form","spaceDelimited","pipeDelimited","deepObject"]},"allowReserved":{"default":false,"type":"boolean"}}}},"styles-for-cookie":{"if":{"properties":{"in":{"const":"cookie"}},"required":["in"]},"then":{"properties":{"style":{"default":"form","const":"form"}}}},"styles-for-form":{"if":{"properties":{"style":{"const":"form"}},"required":["style"]},"then":{"properties":{"explode":{"default":true}}},"else":{"properties":{"explode":{"default":false}}}}}}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"parameter-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/parameter"}},
"request-body":{"$comment":"https://spec.openapis.org/oas/v3.1.0#request-body-object","type":"object","properties":{"description":{"type":"string"},"content":{"$ref":"#/$defs/content"},"required":{"default":false,"type":"boolean"}},"required":["content"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"request-body-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/request-body"}},
"content":{"$comment":"https://spec.openapis.org/oas/v3.1.0#fixed-fields-10","type":"object","additionalProperties":{"$ref":"#/$defs/media-type"},"propertyNames":{"format":"media-range"}},
"media-type":{"$comment":"https://spec.openapis.org/oas/v3.1.0#media-type-object","type":"object","properties":{"schema":{"$dynamicRef":"#meta"},"encoding":{"type":"object","additionalProperties":{"$ref":"#/$defs/encoding"}}},"allOf":[{"$ref":"#/$defs/specification-extensions"},{"$ref":"#/$defs/examples"}],"unevaluatedProperties":false},
"encoding":{"$comment":"https://spec.openapis.org/oas/v3.1.0#encoding-object","type":"object","properties":{"contentType":{"type":"string","format":"media-range"},"headers":{"type":"object","additionalProperties":{"$ref":"#/$defs/header-or-reference"}},"style":{"default":"form","enum":["form","spaceDelimited","pipeDelimited","deepObject"]},"explode":{"type":"boolean"},"allowReserved":{"default":false,"type":"boolean"}},"allOf":[{"$ref":"#/$defs/specification-extensions"},{"$ref":"#/$defs/encoding/$defs/explode-default"}],"unevaluatedProperties":false,"$defs":{"explode-default":{"if":{"properties":{"style":{"const":"form"}},"required":["style"]},"then":{"properties":{"explode":{"default":true}}},"else":{"properties":{"explode":{"default":false}}}}}},
"responses":{"$comment":"https://spec.openapis.org/oas/v3.1.0#responses-object","type":"object","properties":{"default":{"$ref":"#/$defs/response-or-reference"}},"patternProperties":{"^[1-5](?:[0-9]{2}|XX)$":{"$ref":"#/$defs/response-or-reference"}},"minProperties":1,"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"response":{"$comment":"https://spec.openapis.org/oas/v3.1.0#response-object","type":"object","properties":{"description":{"type":"string"},"headers":{"type":"object","additionalProperties":{"$ref":"#/$defs/header-or-reference"}},"content":{"$ref":"#/$defs/content"},"links":{"type":"object","additionalProperties":{"$ref":"#/$defs/link-or-reference"}}},"required":["description"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"response-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/response"}},
"callbacks":{"$comment":"https://spec.openapis.org/oas/v3.1.0#callback-object","type":"object","$ref":"#/$defs/specification-extensions","additionalProperties":{"$ref":"#/$defs/path-item-or-reference"}},
"callbacks-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/callbacks"}},
"example":{"$comment":"https://spec.openapis.org/oas/v3.1.0#example-object","type":"object","properties":{"summary":{"type":"string"},"description":{"type":"string"},"value":true,"externalValue":{"type":"string","format":"uri"}},"not":{"required":["value","externalValue"]},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"example-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/example"}},
"link":{"$comment":"https://spec.openapis.org/oas/v3.1.0#link-object","type":"object","properties":{"operationRef":{"type":"string","format":"uri-reference"},"operationId":{"type":"string"},"parameters":{"$ref":"#/$defs/map-of-strings"},"requestBody":true,"description":{"type":"string"},"body":{"$ref":"#/$defs/server"}},"oneOf":[{"required":["operationRef"]},{"required":["operationId"]}],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"link-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/link"}},
"header":{"$comment":"https://spec.openapis.org/oas/v3.1.0#header-object","type":"object","properties":{"description":{"type":"string"},"required":{"default":false,"type":"boolean"},"deprecated":{"default":false,"type":"boolean"},"schema":{"$dynamicRef":"#meta"},"content":{"$ref":"#/$defs/content","minProperties":1,"maxProperties":1}},"oneOf":[{"required":["schema"]},{"required":["content"]}],"dependentSchemas":{"schema":{"properties":{"style":{"default":"simple","const":"simple"},"explode":{"default":false,"type":"boolean"}},"$ref":"#/$defs/examples"}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"header-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/header"}},
"tag":{"$comment":"https://spec.openapis.org/oas/v3.1.0#tag-object","type":"object","properties":{"name":{"type":"string"},"description":{"type":"string"},"externalDocs":{"$ref":"#/$defs/external-documentation"}},"required":["name"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},
"reference":{"$comment":"https://spec.openapis.org/oas/v3.1.0#reference-object","type":"object","properties":{"$ref":{"type":"string","format":"uri-reference"},"summary":{"type":"string"},"description":{"type":"string"}},"unevaluatedProperties":false},
"schema":{"$comment":"https://spec.openapis.org/oas/v3.1.0#schema-object","$dynamicAnchor":"meta","type":["object","boolean"]},
"security-scheme":{"$comment":"https://spec.openapis.org/oas/v3.1.0#security-scheme-object","type":"object","properties":{"type":{"enum":["apiKey","http","mutualTLS","oauth2","openIdConnect"]},"description":{"type":"string"}},"required":["type"],"allOf":[{"$ref":"#/$defs/specification-extensions"},{"$ref":"#/$defs/security-scheme/$defs/type-apikey"},{"$ref":"#/$defs/security-scheme/$defs/type-http"},{"$ref":"#/$defs/security-scheme/$defs/type-http-bearer"},{"$ref":"#/$defs/security-scheme/$defs/type-oauth2"},{"$ref":"#/$defs/security-scheme/$defs/type-oidc"}],"unevaluatedProperties":false,"$defs":{"type-apikey":{"if":{"properties":{"type":{"const":"apiKey"}},"required":["type"]},"then":{"properties":{"name":{"type":"string"},"in":{"enum":["query","header","cookie"]}},"required":["name","in"]}},"type-http":{"if":{"properties":{"type":{"const":"http"}},"required":["type"]},"then":{"properties":{"scheme":{"type":"string"}},"required":["scheme"]}},"type-http-bearer":{"if":{"properties":{"type":{"const":"http"},"scheme":{"type":"string","pattern":"^[Bb][Ee][Aa][Rr][Ee][Rr]$"}},"required":["type","scheme"]},"then":{"properties":{"bearerFormat":{"type":"string"}}}},"type-oauth2":{"if":{"properties":{"type":{"const":"oauth2"}},"required":["type"]},"then":{"properties":{"flows":{"$ref":"#/$defs/oauth-flows"}},"required":["flows"]}},"type-oidc":{"if":{"properties":{"type":{"const":"openIdConnect"}},"required":["type"]},"then":{"properties":{"openIdConnectUrl":{"type":"string","format":"uri"}},"required":["openIdConnectUrl"]}}}},
"security-scheme-or-reference":{"if":{"type":"object","required":["$ref"]},"then":{"$ref":"#/$defs/reference"},"else":{"$ref":"#/$defs/security-scheme"}},
"oauth-flows":{"type":"object","properties":{"implicit":{"$ref":"#/$defs/oauth-flows/$defs/implicit"},"password":{"$ref":"#/$defs/oauth-flows/$defs/password"},"clientCredentials":{"$ref":"#/$defs/oauth-flows/$defs/client-credentials"},"authorizationCode":{"$ref":"#/$defs/oauth-flows/$defs/authorization-code"}},"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false,"$defs":{"implicit":{"type":"object","properties":{"authorizationUrl":{"type":"string","format":"uri"},"refreshUrl":{"type":"string","format":"uri"},"scopes":{"$ref":"#/$defs/map-of-strings"}},"required":["authorizationUrl","scopes"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},"password":{"type":"object","properties":{"tokenUrl":{"type":"string","format":"uri"},"refreshUrl":{"type":"string","format":"uri"},"scopes":{"$ref":"#/$defs/map-of-strings"}},"required":["tokenUrl","scopes"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},"client-credentials":{"type":"object","properties":{"tokenUrl":{"type":"string","format":"uri"},"refreshUrl":{"type":"string","format":"uri"},"scopes":{"$ref":"#/$defs/map-of-strings"}},"required":["tokenUrl","scopes"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false},"authorization-code":{"type":"object","properties":{"authorizationUrl":{"type":"string","format":"uri"},"tokenUrl":{"type":"string","format":"uri"},"refreshUrl":{"type":"string","format":"uri"},"scopes":{"$ref":"#/$defs/map-of-strings"}},"required":["authorizationUrl","tokenUrl","scopes"],"$ref":"#/$defs/specification-extensions","unevaluatedProperties":false}}},
"security-requirement":{"$comment":"https://spec.openapis.org/oas/v3.1.0#security-requirement-object","type":"object","additionalProperties":{"type":"array","items":{"type":"string"}}},
"specification-extensions":{"$comment":"https://spec.openapis.org/oas/v3.1.0#specification-extensions","patternProperties":{"^x-":true}},
"examples":{"properties":{"example":true,"examples":{"type":"object","additionalProperties":{"$ref":"#/$defs/example-or-reference"}}}},
"map-of-strings":{"type":"object","additionalProperties":{"type":"string"}}
}}
