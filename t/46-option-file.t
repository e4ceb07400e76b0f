# The database credentials from a MySQL option file (db_option_file and
# db_option_group in kvapi.conf; API.md "Security": secrets come from a
# config file or MySQL option file, never argv, never the log).  A
# kvapi.conf without db_password serves a whole register / token / data
# round trip with the password, or the user and the password, from the
# option file; a wrong password there gives the contract's 503 answers
# from a worker that keeps running, and once the file is right again the
# same worker serves without a restart.
use strict;
use warnings;
use Test::More;
use Time::HiRes qw(time sleep);
use lib 't/lib';
use KVTest qw(json_is kpath);

my $CT = 'application/json; charset=utf-8';

my $s = KVTest->start(workers => 1);
my $OPT = $s->dir . '/my.cnf';
my $RIGHT = $s->db_password;
my $WRONG = 'wrong-' . join '', map { ('a' .. 'z')[rand 26] } 1 .. 16;
my $seq = 0;

sub write_opt {
    my ($text) = @_;
    open my $fh, '>', "$OPT.new" or die "$OPT.new: $!";
    chmod 0600, "$OPT.new" or die "chmod $OPT.new: $!";
    print $fh $text;
    close $fh or die "$OPT.new: $!";
    rename "$OPT.new", $OPT or die "rename $OPT: $!";
}

sub slurp {
    open my $fh, '<', $_[0] or die "$_[0]: $!";
    local $/;
    return scalar <$fh>;
}

# The workers' command lines and environments hold no password.
sub no_password_outside {
    my ($name) = @_;
    my @found;
    for my $pid (map { $s->worker_pids($_) } qw(kvapi write auth)) {
        for my $f (qw(cmdline environ)) {
            my $t = eval { slurp("/proc/$pid/$f") } // next;
            push @found, "$pid/$f" if index($t, $RIGHT) >= 0 || index($t, $WRONG) >= 0;
        }
    }
    is_deeply \@found, [], "$name: no password in any worker's argv or environment";
}

# register, token, POST, GET, PUT, GET, DELETE, GET, log out: every answer
# whole.
sub round_trip {
    my ($name) = @_;
    subtest "$name: a whole round trip" => sub {
        my $u = sprintf 'opt%d_%d', $$, ++$seq;
        my $r = $s->register(username => $u, email => "$u\@example.com",
            password => 'correct horse 1', full_name => 'Option File', age => 41);
        is $r->{status}, 201, 'register: 201' or diag $r->{body};
        my $id = $r->{json}{data}{user_id} // '';
        like $id, qr/^[1-9][0-9]*$/, 'user_id';
        json_is($r, { status => 'success', message => 'User successfully registered!',
            data => { user_id => "$id", username => $u, email => "$u\@example.com",
                full_name => 'Option File', age => 41, gender => undef } }, 'register: body');

        $r = $s->request(POST => '/api/token',
            { json => { username => $u, password => 'correct horse 1' } });
        is $r->{status}, 200, 'token: 200' or diag $r->{body};
        my $tok = $r->{json}{data}{access_token} // '';
        like $tok, qr/^[A-Za-z0-9_-]{43}$/, 'access_token';
        json_is($r, { status => 'success', message => 'Access token generated successfully.',
            data => KVTest::token_data($r) },
            'token: body');
        my %auth = %{ $s->auth($tok) };

        $r = $s->request(POST => '/api/data',
            { headers => \%auth, json => { key => 'conf', value => { from => 'option file' } } });
        is $r->{status}, 201, 'POST: 201';
        is $r->{headers}{location}, kpath('conf'), 'POST: Location';
        json_is($r, { status => 'success', message => 'Data stored successfully.' }, 'POST: body');
        $r = $s->request(GET => '/api/data/conf', { headers => \%auth });
        is $r->{headers}{'content-type'}, $CT, 'GET: content type';
        json_is($r, { status => 'success', data => { key => 'conf', value => { from => 'option file' } } },
            'GET: the value');
        $r = $s->request(PUT => '/api/data/conf', { headers => \%auth, json => { value => [1, 'two'] } });
        json_is($r, { status => 'success', message => 'Data updated successfully.' }, 'PUT: body');
        $r = $s->request(GET => '/api/data/conf', { headers => \%auth });
        json_is($r, { status => 'success', data => { key => 'conf', value => [1, 'two'] } },
            'GET: the new value');
        $r = $s->request(DELETE => '/api/data/conf', { headers => \%auth });
        json_is($r, { status => 'success', message => 'Data deleted successfully.' }, 'DELETE: body');
        $s->error_is($s->request(GET => '/api/data/conf', { headers => \%auth }), 'KEY_NOT_FOUND',
            'GET after DELETE');
        $r = $s->request(DELETE => '/api/token', { headers => \%auth });
        json_is($r, { status => 'success', message => 'Access token revoked.' }, 'log out: body');
        $s->error_is($s->request(GET => '/api/data/conf', { headers => \%auth }), 'INVALID_TOKEN',
            'the revoked token');
        # As whom: with no user anywhere the client library takes the OS
        # user's name, root here, whom MariaDB lets in by unix_socket
        # whatever the password.
        my $users = $s->sql('SELECT DISTINCT user FROM information_schema.PROCESSLIST '
            . "WHERE db = '" . $s->db_name . "' AND id <> CONNECTION_ID()");
        is_deeply $users, [ [ $s->db_user ] ], 'the workers are connected as ' . $s->db_user;
    };
}

my @pids = $s->worker_pids;

subtest 'the password in [client] of db_option_file' => sub {
    write_opt("# kvapi's database password (t/46)\n[client]\npassword = $RIGHT\n");
    $s->restart_app(db_password => undef, db_option_file => $OPT);
    unlike slurp($s->config_path), qr/^\s*db_password\b/m, 'kvapi.conf has no db_password';
    like slurp($s->config_path), qr/^db_option_file = \Q$OPT\E$/m, 'kvapi.conf names the option file';
    round_trip('[client]');
    no_password_outside('[client]');
};

subtest 'user and password in the group db_option_group names' => sub {
    # [client] is read too, and comes first: the group's lines win only
    # if the group is read at all.  db_user is empty in kvapi.conf, so
    # the user is the option file's.
    write_opt("[client]\npassword = $WRONG\n\n[kvapi_t46]\nuser = " . $s->db_user
        . "\npassword = $RIGHT\n");
    $s->restart_app(db_user => '', db_option_group => 'kvapi_t46');
    like slurp($s->config_path), qr/^db_user = $/m, 'kvapi.conf: db_user empty';
    round_trip('[kvapi_t46]');
    no_password_outside('[kvapi_t46]');
};

# A token made while the database could be reached, for the data routes.
my $U = $s->new_user('opt');
my %AUTH = %{ $s->auth($U->{token}) };

subtest 'a wrong password in the option file: 503, and the worker stays' => sub {
    write_opt("[client]\npassword = $WRONG\n");
    $s->restart_app(db_user => $s->db_user, db_option_group => undef);
    @pids = $s->worker_pids;
    is scalar @pids, 1, 'one data worker';
    my $r = $s->request(GET => '/api/health');
    is $r->{status}, 503, 'health: 503';
    is $r->{headers}{'content-type'}, $CT, 'health: content type';
    json_is($r, { status => 'error', code => 'SERVICE_UNAVAILABLE',
        message => $KVTest::ERRORS{SERVICE_UNAVAILABLE}[1], data => { database => 'down' } },
        'health: the worker answers, database down');
    $s->error_is($s->register(username => "optw$$", email => "optw$$\@example.com",
        password => 'correct horse 1', full_name => 'W'), 'SERVICE_UNAVAILABLE', 'register');
    $s->error_is($s->request(POST => '/api/token',
        { json => { username => $U->{username}, password => $U->{password} } }),
        'SERVICE_UNAVAILABLE', 'token');
    $s->error_is($s->request(POST => '/api/data', { headers => \%AUTH, json => { key => 'k', value => 1 } }),
        'SERVICE_UNAVAILABLE', 'POST /api/data');
    $s->error_is($s->request(GET => '/api/data/k', { headers => \%AUTH }), 'SERVICE_UNAVAILABLE',
        'GET /api/data/k');
    $s->error_is($s->request(GET => '/api/data', { headers => \%AUTH }), 'SERVICE_UNAVAILABLE',
        'GET /api/data');
    is_deeply [ $s->worker_pids ], \@pids, 'the same worker after the 503s';

    my $log = $s->log_text('kvapi');
    like $log, qr/ error: database connect to .*: Access denied for user '\Q${\ $s->db_user }\E'\@'localhost' \(using password: YES\)/,
        'the worker log says why';
    unlike $log, qr/\Q$WRONG\E|\Q$RIGHT\E/, 'and holds no password';
    no_password_outside('wrong password');

    # The file is read at every connect: put it right and the same
    # worker serves again.
    write_opt("[client]\npassword = $RIGHT\n");
    my $deadline = time + 10;
    my $h = $s->request(GET => '/api/health');
    while ($h->{status} != 200 && time < $deadline) {
        sleep 0.1;
        $h = $s->request(GET => '/api/health');
    }
    json_is($h, { status => 'success', data => { database => 'up' } }, 'the file put right: health 200');
    $r = $s->request(POST => '/api/data', { headers => \%AUTH, json => { key => 'k', value => 1 } });
    is $r->{status}, 201, 'POST /api/data: 201';
    is_deeply [ $s->worker_pids ], \@pids, 'still the same worker';
    round_trip('put right');
};

$s->stop;
done_testing;
