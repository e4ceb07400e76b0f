# The account routes (API.md "Accounts and sessions", issue 14 and its
# decisions): GET /api/users/me (the whole profile, created_at, usage and
# quota), PATCH /api/users/me (every field, null clearing age and gender,
# INVALID_PROFILE, INVALID_AGE, INVALID_GENDER and EMAIL_EXISTS in their
# order, all or nothing), PUT /api/users/me/password (MISSING_PASSWORDS,
# INVALID_PASSWORD, INVALID_CREDENTIALS; success ends every other session
# and keeps the current one), DELETE /api/users/me (wrong or missing
# password; success removes the user, sessions, tokens and data, and
# frees the username and the email), and around them: authentication
# first, 415 and INVALID_JSON, the trailing slash, 405 with Allow,
# OPTIONS, 404.
use strict;
use warnings;
use utf8;
use JSON::PP ();
use Test::More;
use lib 't/lib';
use KVTest qw(json_is show);
use KVAccount qw(:all);

binmode Test::More->builder->$_, ':encoding(UTF-8)'
    for qw(output failure_output todo_output);

my $ME = '/api/users/me';
my $PW = '/api/users/me/password';
my $s = KVTest->start;


# A registered user with a profile (%o overrides) and a session of its
# own; {username, email, password, full_name, age, gender, user_id,
# token (the access token of that session), t (token_ok's hash)}.
my $seq = 0;
sub mk_user {
    my ($st, %o) = @_;
    my $n = sprintf 'me23_%d_%d', $$, ++$seq;
    my %u = (username => $n, email => "$n\@example.com", password => 'correct horse 23',
        full_name => "Me $n", age => undef, gender => undef, %o);
    my $r = $st->register(%u);
    die "mk_user: register gave $r->{status}: $r->{body}\n" unless $r->{status} == 201 && $r->{json};
    $u{user_id} = $r->{json}{data}{user_id};
    $u{t} = token_ok(login($st, \%u), "setup: $n logs in");
    $u{token} = $u{t}{access};
    return \%u;
}

# One test: $r is the profile of $u, whole body (data as GET; message
# for PATCH).  keys/bytes: the usage; quota_keys/quota_bytes.
sub me_ok {
    my ($r, $u, $name, %o) = @_;
    my $st = $o{st} // $s;
    my $d = ref $r->{json} eq 'HASH' && ref $r->{json}{data} eq 'HASH' ? $r->{json}{data} : {};
    my $created = !ref $d->{created_at} ? $d->{created_at} : undef;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        is $r->{headers}{'cache-control'}, 'no-store', 'Cache-Control: no-store';
        my $e = rfc3339($created);
        ok defined $e, 'created_at ' . show($created, 60) . ': RFC 3339 UTC, whole seconds, Z';
        my ($db) = @{ $st->sql("SELECT DATE_FORMAT(created_at, '%Y-%m-%dT%H:%i:%sZ') FROM users"
            . " WHERE id = " . ($u->{user_id} =~ /\A\d+\z/ ? $u->{user_id} : 0))->[0] // [] };
        ok defined $e && defined $db && ($e == rfc3339($db) || $e == rfc3339($db) + 1),
            'created_at is the registration time (' . show($db, 60) . ', to the second)';
        json_is($r, {
            status => 'success',
            defined $o{message} ? (message => $o{message}) : (),
            data   => {
                user_id   => "$u->{user_id}",
                username  => $u->{username},
                email     => $u->{email},
                full_name => $u->{full_name},
                age       => $u->{age},
                gender    => $u->{gender},
                created_at => defined $created ? "$created" : 'missing',
                usage     => { keys => $o{keys} // 0, bytes => $o{bytes} // 0 },
                quota     => { keys => $o{quota_keys} // 100000, bytes => $o{quota_bytes} // 104857600 },
            },
        }, 'whole body');
    };
}

sub me { my ($u, $path) = @_; $s->request(GET => $path // $ME, { headers => $s->auth($u->{token}) }) }
sub patch { my ($u, $body, %o) = @_; user_req($s, PATCH => $o{path} // $ME, $o{token} // $u->{token}, $body, %o) }
sub chpw { my ($u, $body, %o) = @_; user_req($s, PUT => $o{path} // $PW, $o{token} // $u->{token}, $body, %o) }
sub delme { my ($u, $body, %o) = @_; user_req($s, DELETE => $o{path} // $ME, $o{token} // $u->{token}, $body, %o) }

sub success_is {
    my ($r, $message, $name) = @_;
    subtest $name => sub {
        is $r->{status}, 200, 'status 200' or diag $r->{body};
        is $r->{headers}{'content-type'}, $CT, 'Content-Type';
        json_is($r, { status => 'success', message => $message }, 'whole body (no data)');
    };
}

sub store {
    my ($u, $k, $v) = @_;
    my $r = $s->request(POST => '/api/data', { headers => $s->auth($u->{token}), json => { key => $k, value => $v } });
    is $r->{status}, 201, 'setup: store ' . show($k, 60) or diag $r->{body};
}

# An email address of exactly 254 or 255 bytes, unique.
sub long_email {
    my ($len) = @_;
    my $local = sprintf 'u%d_%d', $$, ++$seq;
    $local .= 'x' x (60 - length $local);
    my $e = $local . '@' . ('d' x 60 . '.') x 3 . 'c' x ($len - 244);
    die "long_email($len): " . length $e unless length $e == $len;
    return $e;
}

subtest 'GET /api/users/me' => sub {
    my $u = mk_user($s, email => "Me23.$$\@Example.COM", age => 30, gender => 'female', full_name => 'Zoë Me ☃');
    me_ok(me($u), $u, 'a new user: the whole profile, usage 0');
    me_ok(me($u, "$ME/"), $u, 'the same on /api/users/me/ (trailing slash)');
    me_ok($s->request(GET => $ME, { headers => { Authorization => "bearer $u->{token}" } }), $u,
        'the scheme in lower case');
    my $t2 = login_ok($s, $u, 'setup: a second session');
    me_ok($s->request(GET => $ME, { headers => $s->auth($t2->{access}) }), $u, 'the same through another session');

    store($u, 'k1', 'v');
    store($u, 'é', { a => [ 1, 2 ] });
    is $s->sql("SELECT SUM(LENGTH(k) + LENGTH(v)) FROM data WHERE user_id = $u->{user_id}")->[0][0], 18,
        'setup: 2 + 3 and 2 + 11 bytes stored';
    me_ok(me($u), $u, 'usage: 2 keys, 18 bytes of key and value text', keys => 2, bytes => 18);
    my $o = mk_user($s);
    store($o, "o$_", 'x' x 100) for 1 .. 3;
    me_ok(me($u), $u, "another user's keys do not count", keys => 2, bytes => 18);
    my $r = $s->request(DELETE => '/api/data/k1', { headers => $s->auth($u->{token}) });
    is $r->{status}, 200, 'setup: delete k1' or diag $r->{body};
    me_ok(me($u), $u, 'a delete frees its bytes at once', keys => 1, bytes => 13);
};

subtest 'PATCH /api/users/me: every field' => sub {
    my $u = mk_user($s, age => 30, gender => 'male');
    my $old = $u->{email};
    my %new = (email => "New.$$.23\@Example.ORG", full_name => 'New Name', age => 41, gender => 'non-binary');
    my $r = patch($u, \%new);
    @$u{ keys %new } = values %new;
    me_ok($r, $u, 'all four fields: 200 with the new profile', message => 'User updated successfully.');
    me_ok(me($u), $u, 'GET shows them');
    login_ok($s, $u, 'the username and password are unchanged');
    is $s->register(username => "free_$$", email => $old, password => 'correct horse 23', full_name => 'F')->{status},
        201, 'the old email is free again';
    $s->error_is($s->register(username => "taken_$$", email => lc $new{email}, password => 'correct horse 23',
        full_name => 'T'), 'EMAIL_EXISTS', 'the new one is taken (in any case)');

    $u->{full_name} = 'Only The Name';
    me_ok(patch($u, { full_name => 'Only The Name' }), $u, 'one field: only it changes', message => 'User updated successfully.');
    $u->{age} = undef;
    me_ok(patch($u, { age => undef }), $u, 'age null clears it', message => 'User updated successfully.');
    $u->{gender} = undef;
    me_ok(patch($u, { gender => undef }), $u, 'gender null clears it', message => 'User updated successfully.');
    me_ok(patch($u, { age => undef, gender => undef }), $u, 'clearing again: still null', message => 'User updated successfully.');
    @$u{qw(age gender)} = (1, 'g' x 32);
    me_ok(patch($u, { age => 1, gender => 'g' x 32 }), $u, 'age 1, gender of 32 characters', message => 'User updated successfully.');
    $u->{age} = 150;
    me_ok(patch($u, '{"age":150.0}'), $u, 'age 150.0 is 150', message => 'User updated successfully.');
    @$u{qw(full_name gender)} = ('😀' x 128, 'é' x 32);
    me_ok(patch($u, { full_name => '😀' x 128, gender => 'é' x 32 }), $u, 'full_name of 128 four-byte characters',
        message => 'User updated successfully.');
    $u->{email} = long_email(254);
    me_ok(patch($u, { email => $u->{email} }), $u, 'a 254-byte email', message => 'User updated successfully.');
    me_ok(patch($u, {}), $u, '{} changes nothing: 200', message => 'User updated successfully.');
    me_ok(patch($u, { user_id => '1', created_at => '2000-01-01T00:00:00Z', usage => { keys => 5 },
        quota => { keys => 1 }, nickname => 'x' }), $u, 'unknown members are ignored', message => 'User updated successfully.');
    $u->{email} = uc $u->{email};
    me_ok(patch($u, { email => $u->{email} }), $u, 'its own email in another case: fine, kept as sent',
        message => 'User updated successfully.');
    $u->{full_name} = 'Via Slash';
    me_ok(patch($u, { full_name => 'Via Slash' }, path => "$ME/"), $u, 'PATCH /api/users/me/ (trailing slash)',
        message => 'User updated successfully.');
    me_ok(me($u), $u, 'GET agrees');
};

subtest 'PATCH: INVALID_PROFILE' => sub {
    my $u = mk_user($s, age => 20, gender => 'f');
    my @cases = (
        [ 'username (another)',         { username => "other_$$" } ],
        [ 'username (its own)',         { username => $u->{username} } ],
        [ 'username null',              { username => undef } ],
        [ 'username with valid fields', { username => "x_$$", full_name => 'Valid Name' } ],
        [ 'password',                   { password => 'correct horse 99' } ],
        [ 'password null',              { password => undef } ],
        [ 'password (the right one)',   { password => $u->{password} } ],
        [ 'email null',                 { email => undef } ],
        [ 'email ""',                   { email => '' } ],
        [ 'email 5',                    { email => 5 } ],
        [ 'email true',                 { email => JSON::PP::true } ],
        [ 'email an array',             { email => [ "a$$\@example.com" ] } ],
        [ 'email an object',            { email => { e => "a$$\@example.com" } } ],
        [ 'email without @',            { email => 'no-at-sign.example.com' } ],
        [ 'email with two @',           { email => 'two@@example.com' } ],
        [ 'email a@b@c',                { email => 'a@b@example.com' } ],
        [ 'email without local part',   { email => '@example.com' } ],
        [ 'email without a dot in the domain', { email => 'user@localhost' } ],
        [ 'email with a space',         { email => 'us er@example.com' } ],
        [ 'email with a tab',           { email => "us\ter\@example.com" } ],
        [ 'email with U+0001',          { email => "us\x{1}er\@example.com" } ],
        [ 'email of 255 bytes',         { email => long_email(255) } ],
        [ 'full_name null',             { full_name => undef } ],
        [ 'full_name ""',               { full_name => '' } ],
        [ 'full_name 5',                { full_name => 5 } ],
        [ 'full_name an array',         { full_name => ['Name'] } ],
        [ 'full_name an object',        { full_name => { n => 'Name' } } ],
        [ 'full_name of 129 characters', { full_name => 'f' x 129 } ],
        [ 'full_name with a newline',   { full_name => "Full\nName" } ],
        [ 'full_name with U+0000',      { full_name => "Full\x{0}Name" } ],
    );
    $s->error_is(patch($u, $_->[1]), 'INVALID_PROFILE', $_->[0]) for @cases;
    me_ok(me($u), $u, 'nothing changed');
};

subtest 'PATCH: INVALID_AGE and INVALID_GENDER' => sub {
    my $u = mk_user($s, age => 20, gender => 'f');
    for ([ '0', 0 ], [ '-1', -1 ], [ '151', 151 ], [ '30.5', 30.5 ], [ '"30"', '30' ], [ 'true', JSON::PP::true ],
         [ 'false', JSON::PP::false ], [ '[]', [] ], [ '{}', {} ], [ '""', '' ]) {
        $s->error_is(patch($u, { age => $_->[1] }), 'INVALID_AGE', "age $_->[0]");
    }
    for ([ '""', '' ], [ '5', 5 ], [ 'true', JSON::PP::true ], [ '[]', [] ], [ '{}', {} ],
         [ '33 characters', 'g' x 33 ], [ 'with a newline', "ma\nle" ], [ 'U+0001', "\x{1}" ]) {
        $s->error_is(patch($u, { gender => $_->[1] }), 'INVALID_GENDER', "gender $_->[0]");
    }
    me_ok(me($u), $u, 'nothing changed');
};

subtest 'PATCH: the order of the checks; all or nothing' => sub {
    my $u = mk_user($s, age => 20, gender => 'f');
    my $o = mk_user($s);
    my $taken = uc $o->{email};
    my @cases = (
        [ 'username before email',            { username => 'x', email => 'bad' },                 'INVALID_PROFILE' ],
        [ 'password before age',              { password => 'x', age => 0 },                       'INVALID_PROFILE' ],
        [ 'username before a taken email',    { username => $u->{username}, email => $taken },     'INVALID_PROFILE' ],
        [ 'a bad email before a bad age',     { email => 'bad', age => 0 },                        'INVALID_PROFILE' ],
        [ 'a bad full_name before a bad gender', { full_name => '', gender => '' },                'INVALID_PROFILE' ],
        [ 'a bad age before a bad gender',    { age => 0, gender => '' },                          'INVALID_AGE' ],
        [ 'a bad age before a taken email',   { age => 0, email => $taken },                       'INVALID_AGE' ],
        [ 'a bad gender before a taken email', { gender => '', email => $taken },                  'INVALID_GENDER' ],
        [ 'a bad full_name before a taken email', { full_name => "a\nb", email => $taken },        'INVALID_PROFILE' ],
        [ 'a taken email, the rest valid',    { email => $taken, full_name => 'Changed', age => 99 }, 'EMAIL_EXISTS' ],
        [ 'a valid name with a bad age',      { full_name => 'Changed', age => 0 },                'INVALID_AGE' ],
        [ 'a valid email with a bad gender',  { email => "changed$$\@example.com", gender => [] }, 'INVALID_GENDER' ],
    );
    $s->error_is(patch($u, $_->[1]), $_->[2], $_->[0]) for @cases;
    me_ok(me($u), $u, 'no refused PATCH changed anything (no field of a refused body was kept)');
    for my $e ($o->{email}, lc $o->{email}, uc $o->{email}) {
        $s->error_is(patch($u, { email => $e }), 'EMAIL_EXISTS', "EMAIL_EXISTS: another user's email as " . show($e, 60));
    }
    is $s->register(username => "new23_$$", email => $u->{email}, password => 'correct horse 23', full_name => 'N')->{status},
        409, 'the email was not freed by any refused PATCH';
};

subtest 'PUT /api/users/me/password: the refusals' => sub {
    my $u = mk_user($s);
    my $other = login_ok($s, $u, 'setup: another session');
    my $pw = $u->{password};
    my @missing = (
        [ '{}',                        {} ],
        [ 'new_password missing',      { current_password => $pw } ],
        [ 'current_password missing',  { new_password => 'a new password 23' } ],
    );
    for my $v ([ 'null', undef ], [ '""', '' ], [ '5', 5 ], [ 'true', JSON::PP::true ], [ 'an array', [$pw] ],
               [ 'an object', { p => $pw } ]) {
        push @missing, [ "current_password $v->[0]", { current_password => $v->[1], new_password => 'a new password 23' } ],
                       [ "new_password $v->[0]", { current_password => $pw, new_password => $v->[1] } ];
    }
    push @missing, [ 'both empty', { current_password => '', new_password => '' } ],
                   [ 'before INVALID_PASSWORD', { current_password => '', new_password => 'short' } ],
                   [ 'old field names (password)', { password => $pw, new_password => 'a new password 23' } ];
    $s->error_is(chpw($u, $_->[1]), 'MISSING_PASSWORDS', $_->[0]) for @missing;

    for my $bad ([ '7 characters', 'short77' ], [ '73 bytes', 'a' x 73 ], [ '37 two-byte characters (74 bytes)', 'é' x 37 ],
                 [ '71 bytes + a two-byte character', 'a' x 71 . 'é' ], [ 'holding U+0000', "correct\x{0}horse 23" ]) {
        $s->error_is(chpw($u, { current_password => $pw, new_password => $bad->[1] }), 'INVALID_PASSWORD',
            "new_password of $bad->[0]");
        $s->error_is(chpw($u, { current_password => 'wrong password', new_password => $bad->[1] }), 'INVALID_PASSWORD',
            "new_password of $bad->[0], wrong current_password: INVALID_PASSWORD before the bcrypt");
    }
    for my $bad ([ 'a wrong one', 'wrong password 23' ], [ 'in upper case', uc $pw ], [ 'with x appended', "${pw}x" ],
                 [ 'with a trailing space', "$pw " ], [ 'its first 8 characters', substr($pw, 0, 8) ],
                 [ 'of 100 characters', $pw . 'x' x (100 - length $pw) ], [ 'followed by U+0000', "$pw\x{0}" ]) {
        $s->error_is(chpw($u, { current_password => $bad->[1], new_password => 'a new password 23' }),
            'INVALID_CREDENTIALS', "current_password $bad->[0]");
    }
    login_ok($s, $u, 'nothing changed: the password still logs in');
    $s->error_is(login($s, $u, password => 'a new password 23'), 'INVALID_CREDENTIALS', 'the refused new one does not');
    token_works($s, $other->{access}, 'the other session was not ended');
    token_ok(refresh($s, $other->{refresh}), 'and its refresh token rotates', session => $other->{session});
};

subtest 'PUT /api/users/me/password: success ends every other session' => sub {
    my $u = mk_user($s);
    store($u, 'kept', 'still here');
    my $cur1 = $u->{t};
    my $cur2 = token_ok(refresh($s, $cur1->{refresh}), 'setup: the current session, refreshed', session => $cur1->{session});
    my $o1 = login_ok($s, $u, 'setup: other session 1');
    my $o2a = login_ok($s, $u, 'setup: other session 2');
    my $o2b = token_ok(refresh($s, $o2a->{refresh}), 'setup: other session 2, refreshed', session => $o2a->{session});
    my $new = 'a new password 23';
    success_is(chpw($u, { current_password => $u->{password}, new_password => $new }, token => $cur2->{access}),
        'Password changed successfully.', 'PUT with the current session\'s newest token: 200');
    token_works($s, $cur2->{access}, 'the current session stays: its newest access token works');
    token_works($s, $cur1->{access}, 'and its older one');
    my $cur3 = token_ok(refresh($s, $cur2->{refresh}), 'and its refresh token rotates', session => $cur1->{session});
    token_dead($s, $o1->{access}, 'other session 1: access token dead');
    refresh_dead($s, $o1->{refresh}, 'other session 1: refresh token dead');
    token_dead($s, $o2a->{access}, 'other session 2: its first access token dead');
    token_dead($s, $o2b->{access}, 'other session 2: its second access token dead');
    refresh_dead($s, $o2b->{refresh}, 'other session 2: refresh token dead');
    $s->error_is(login($s, $u), 'INVALID_CREDENTIALS', 'the old password no longer logs in');
    my $n = login_ok($s, $u, 'the new one does', password => $new);
    my @ids = sort map { $_->{session_id} // '' } @{ session_items(sessions_of($s, $cur3->{access})) };
    is_deeply \@ids, [ sort map { $_ // 'missing' } $cur1->{session}, $n->{session} ],
        'GET /api/sessions: the current session and the new login, nothing else';
    my $r = $s->request(GET => '/api/data/kept', { headers => $s->auth($cur3->{access}) });
    json_is($r, { status => 'success', data => { key => 'kept', value => 'still here' } }, 'the data is untouched');

    # Again from the new login, on /api/users/me/password/.
    success_is(chpw($u, { current_password => $new, new_password => 'a third password' }, token => $n->{access},
        path => "$PW/"), 'Password changed successfully.', 'a second change, on the path with a trailing slash');
    token_works($s, $n->{access}, 'its session stays');
    token_dead($s, $cur3->{access}, 'the session that made the first change is now an other session: ended');
    login_ok($s, $u, 'the third password logs in', password => 'a third password');
};

subtest 'DELETE /api/users/me: a wrong or missing password' => sub {
    my $u = mk_user($s);
    store($u, 'k', 1);
    my $pw = $u->{password};
    my @cases = (
        [ '{}', {} ], [ 'password null', { password => undef } ], [ 'password ""', { password => '' } ],
        [ 'password 5', { password => 5 } ], [ 'password true', { password => JSON::PP::true } ],
        [ 'password an array', { password => [$pw] } ], [ 'password an object', { password => { p => $pw } } ],
        [ 'a wrong password', { password => 'wrong password 23' } ], [ 'in upper case', { password => uc $pw } ],
        [ 'with x appended', { password => "${pw}x" } ], [ 'followed by U+0000', { password => "$pw\x{0}" } ],
        [ 'current_password instead', { current_password => $pw } ],
    );
    $s->error_is(delme($u, $_->[1]), 'INVALID_CREDENTIALS', $_->[0]) for @cases;
    $s->error_is(delme($u, ''), 'INVALID_JSON', 'an empty body: INVALID_JSON');
    $s->error_is(delme($u, '[]'), 'INVALID_JSON', 'an array: INVALID_JSON');
    $s->error_is(delme($u, qq({"password":"x","password":"$pw"})), 'INVALID_JSON', 'password twice: INVALID_JSON');
    me_ok(me($u), $u, 'the user is still there', keys => 1, bytes => 2);
    login_ok($s, $u, 'and logs in');
};

subtest 'DELETE /api/users/me: success' => sub {
    my $u = mk_user($s, age => 33, gender => 'x');
    store($u, 'k1', 'one');
    store($u, 'k2', { two => 2 });
    my $o = mk_user($s);
    store($o, 'k1', 'other');
    my $a1 = $u->{t};
    my $a2 = token_ok(refresh($s, $a1->{refresh}), 'setup: refreshed', session => $a1->{session});
    my $b = login_ok($s, $u, 'setup: a second session');
    success_is(delme($u, { password => $u->{password} }, token => $a2->{access}), 'User deleted successfully.',
        'DELETE with the right password: 200');
    token_dead($s, $_->[1], "$_->[0]: dead") for [ 'the presenting token', $a2->{access} ],
        [ 'the older token of that session', $a1->{access} ], [ 'the other session', $b->{access} ];
    refresh_dead($s, $a2->{refresh}, 'the refresh token of the deleting session: dead');
    refresh_dead($s, $b->{refresh}, 'the other session\'s: dead');
    $s->error_is(login($s, $u), 'INVALID_CREDENTIALS', 'the password no longer logs in');
    is_deeply trace_rows($s, user_id => $u->{user_id},
        strings => [ map { @$_{qw(access refresh session)} } $a1, $a2, $b ]), [],
        'no row of any table holds the user\'s id, tokens or session ids';
    my $r = $s->request(GET => '/api/data/k1', { headers => $s->auth($o->{token}) });
    json_is($r, { status => 'success', data => { key => 'k1', value => 'other' } }, 'another user\'s data is untouched');

    my $again = eval { mk_user($s, username => $u->{username}, email => $u->{email}) };
    ok $again, 'the username and the email can be registered again at once' or return diag $@;
    isnt $again->{user_id}, $u->{user_id}, 'by a new user';
    $s->error_is($s->request(GET => '/api/data/k1', { headers => $s->auth($again->{token}) }), 'KEY_NOT_FOUND',
        'the new owner does not see the old k1');
    $r = $s->request(GET => '/api/data', { headers => $s->auth($again->{token}) });
    json_is($r, { status => 'success', data => { items => [], next_cursor => undef } }, 'nor any other old key');
    me_ok(me($again), $again, 'the new owner\'s profile, usage 0');
    token_dead($s, $b->{access}, 'the old tokens do not reach the new owner');
};

subtest 'authentication comes first' => sub {
    my $u = mk_user($s);
    my @routes = ([ GET => $ME, undef ], [ PATCH => $ME, '{"email":"bad"' ], [ PUT => $PW, '{"current_password":' ],
                  [ DELETE => $ME, '{"password":' ]);
    for my $rt (@routes) {
        my ($m, $p, $body) = @$rt;
        for my $tok ([ 'no Authorization', undef, $WWW_NONE ], [ 'an unknown token', 'A' x 43, $WWW_BAD ],
                     [ 'a refresh token', $u->{t}{refresh}, $WWW_BAD ]) {
            my $r = user_req($s, $m, $p, $tok->[1], $body, ct => 'text/plain');
            subtest "$m $p, $tok->[0], a bad Content-Type and body: INVALID_TOKEN" => sub {
                $s->error_is($r, 'INVALID_TOKEN', 'INVALID_TOKEN');
                is $r->{headers}{'www-authenticate'}, $tok->[2], 'WWW-Authenticate';
            };
        }
    }
    $s->error_is(patch($u, { username => 'x' }, token => 'B' x 43), 'INVALID_TOKEN', 'PATCH: before INVALID_PROFILE');
    $s->error_is(chpw($u, {}, token => 'B' x 43), 'INVALID_TOKEN', 'PUT password: before MISSING_PASSWORDS');
    $s->error_is(delme($u, { password => $u->{password} }, token => 'B' x 43), 'INVALID_TOKEN',
        'DELETE: before the password (the right one)');
    me_ok(me($u), $u, 'the user is intact');
};

subtest 'Content-Type (415) and INVALID_JSON' => sub {
    my $u = mk_user($s);
    my %valid = (PATCH => [ $ME, '{}' ], PUT => [ $PW, '{"current_password":"x"}' ], DELETE => [ $ME, '{}' ]);
    for my $m (sort keys %valid) {
        my ($p, $body) = @{ $valid{$m} };
        for my $ct (undef, 'text/plain', 'application/x-www-form-urlencoded', 'application/json; charset=latin1',
                    'multipart/form-data; boundary=x') {
            $s->error_is(user_req($s, $m, $p, $u->{token}, $body, ct => $ct), 'UNSUPPORTED_MEDIA_TYPE',
                "$m $p, Content-Type " . ($ct // 'none'));
        }
        $s->error_is(user_req($s, $m, $p, $u->{token}, '{', ct => 'text/plain'), 'UNSUPPORTED_MEDIA_TYPE',
            "$m $p: 415 before INVALID_JSON");
        for my $bad ([ 'truncated', '{' ], [ 'an array', '[]' ], [ 'null', 'null' ], [ 'a string', '"x"' ],
                     [ 'a duplicate member', '{"a":1,"a":2}' ], [ 'trailing garbage', '{} x' ], [ 'invalid UTF-8', "{\"a\":\"\xff\"}" ]) {
            $s->error_is(user_req($s, $m, $p, $u->{token}, $bad->[1]), 'INVALID_JSON', "$m $p: $bad->[0]");
        }
    }
    me_ok(patch($u, '{}', ct => 'application/merge-patch+json'), $u, 'PATCH: a +json type is fine',
        message => 'User updated successfully.');
    me_ok(patch($u, '{}', ct => 'application/json; charset=UTF-8'), $u, 'PATCH: a charset parameter is fine',
        message => 'User updated successfully.');
    $s->error_is(patch($u, '{"full_name":"A","full_name":"B"}'), 'INVALID_JSON', 'PATCH: full_name twice');
    me_ok(me($u), $u, 'nothing changed');
};

subtest 'methods, OPTIONS and unknown paths' => sub {
    my $u = mk_user($s);
    my @cases = ([ $ME, [qw(GET PATCH DELETE OPTIONS)], [qw(POST PUT)] ],
                 ["$ME/", [qw(GET PATCH DELETE OPTIONS)], [qw(POST PUT)] ],
                 [ $PW, [qw(PUT OPTIONS)], [qw(GET POST PATCH DELETE)] ]);
    for my $c (@cases) {
        my ($p, $allowed, $refused) = @$c;
        for my $m (@$refused) {
            for my $tok ($u->{token}, undef) {
                my $r = user_req($s, $m, $p, $tok, '{}');
                my $name = "$m $p" . (defined $tok ? '' : ' (no token: routing first)');
                subtest "$name: 405" => sub {
                    $s->error_is($r, 'METHOD_NOT_ALLOWED', 'METHOD_NOT_ALLOWED');
                    my %got = map { $_ => 1 } split /,\s*/, $r->{headers}{allow} // '';
                    ok $got{$_}, "Allow lists $_" for @$allowed;
                };
            }
        }
        my $r = $s->request(OPTIONS => $p, { headers => { Origin => 'https://app.example',
            'Access-Control-Request-Method' => 'PATCH', 'Access-Control-Request-Headers' => 'authorization,content-type' } });
        subtest "OPTIONS $p: the preflight" => sub {
            is $r->{status}, 204, 'status 204';
            is $r->{body}, '', 'no body';
            is $r->{headers}{'access-control-allow-methods'}, 'GET,HEAD,PUT,PATCH,POST,DELETE', 'Access-Control-Allow-Methods';
            is $r->{headers}{'access-control-allow-headers'}, 'authorization,content-type', 'Access-Control-Allow-Headers';
        };
    }
    for my $p ('/api/users', '/api/users/', '/api/users/1', "/api/users/$u->{user_id}", '/api/users/mex',
               '/api/users/me/x', '/api/users/me/password/x', '/api/users/me/passwords', '/api/user/me') {
        $s->error_is($s->request(GET => $p, { headers => $s->auth($u->{token}) }), 'NOT_FOUND', "GET $p: NOT_FOUND");
    }
};

# The quota members come from the config.
subtest 'GET: quota_keys and quota_bytes from the config' => sub {
    my $s2;
    my $ok = eval {
        $s2 = KVTest->start(quota_keys => 7, quota_bytes => 5000);
        my $u = mk_user($s2, age => 5);
        me_ok($s2->request(GET => $ME, { headers => $s2->auth($u->{token}) }), $u, 'quota {keys: 7, bytes: 5000}',
            st => $s2, quota_keys => 7, quota_bytes => 5000);
        1;
    };
    ok $ok, 'a stack with quota_keys 7 and quota_bytes 5000 answers' or diag $@;
    $s2->stop if $s2;
};

done_testing;
