#!/usr/bin/env python3
"""Derive a compact 'known attacker behaviour' model from the LogPrecis supervised
corpus and evaluate it (attack hit rate on the corpus, false positives on SEA).

Regenerate:  python3 attack_model.py   -> writes attack_model.json + prints metrics

Corpus semantics (verified on 352/359 sessions, the 7 others contain shell loops /
'&' / unspaced ';'): a session is split into SIMPLE COMMANDS on ' ; ', ' | ',
' && ', ' || '.  labels "T1 - e1 -- T2 - e2 ..." mean: commands 0..e1 have tactic
T1, commands e1+1..e2 have T2, ... (e = inclusive END index, ascending).
"""
import json, re, math, glob, collections, os

DATA = os.environ.get('OTGATE_DATA', os.path.join(os.path.dirname(os.path.abspath(__file__)), '../../../shared/data'))
CORPUS = os.path.join(DATA, 'attack-sessions/logprecis_supervised_corpus.json')
SEA = os.path.join(DATA, 'sea-dev/')
OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), 'attack_model.json')
SPLIT = re.compile(r' ; | \| | && | \|\| ')
WRAP = {'sudo', 'nohup', 'busybox', 'env', 'exec', 'timeout', 'nice', 'command', 'time',
        'then', 'do', 'else', 'xargs'}
BUILTINS = {'cd', 'exit', 'unset', 'history', 'export', 'source', 'alias', 'set', 'ulimit'}
LOCAL = '<local-exec>'          # ./x , /tmp/x , /var/tmp/x , /dev/shm/x
MAX_ENTRIES = 80
MIN_TEMPLATES = 2               # command must occur in >= 2 distinct session templates
SEA_TRUNC = 8                   # SEA command names are truncated to 8 chars

# ---------------------------------------------------------------- parsing
def split_cmds(session):
    s = session.strip()
    if s.endswith(';'):
        s = s[:-1].strip()
    return [p.strip() for p in SPLIT.split(s) if p.strip()]

def parse_labels(lab):
    out = []
    for part in lab.split(' -- '):
        t, n = part.rsplit(' - ', 1)
        out.append((t.strip(), int(n)))
    return out

def cmd_name(stmt):
    """first word after env assignments / wrappers, basename; local exec -> LOCAL."""
    toks = stmt.split()
    i = 0
    while i < len(toks):
        t = toks[i].strip('\'"')
        if re.match(r'^[A-Za-z_][A-Za-z0-9_]*=', t) or t in WRAP or t in ('{', '(', '!'):
            i += 1
            continue
        if t.startswith('-') and i > 0 and toks[i - 1] in WRAP:   # sudo -u x, timeout opts
            i += 1
            continue
        break
    if i >= len(toks):
        return ''
    t = toks[i].strip('\'"').lstrip('({').rstrip(';)')
    if t.startswith('./') or re.match(r'^/(tmp|var/tmp|dev/shm|run|mnt)/', t):
        return LOCAL
    return t.rsplit('/', 1)[-1]

def load_corpus():
    """-> list of (simple_cmds, tactic_per_cmd, top_level_statement_index_per_cmd)"""
    d = json.load(open(CORPUS))
    sessions = []
    for key, v in d.items():
        cmds = split_cmds(v['session'])
        # top-level statements = ' ; '-separated lines (the brief's "statements")
        top = [x for x in v['session'].strip().rstrip(';').split(' ; ') if x.strip()]
        stmt_of = []
        for si, st in enumerate(top):
            stmt_of += [si] * len([p for p in re.split(r' \| | && | \|\| ', st.strip()) if p.strip()])
        stmt_of = (stmt_of + [stmt_of[-1] if stmt_of else 0] * len(cmds))[:len(cmds)]
        tac = [None] * len(cmds)
        prev = -1
        for t, e in parse_labels(v['labels']):
            for j in range(prev + 1, min(e, len(cmds) - 1) + 1):
                tac[j] = t
            prev = e
        sessions.append((cmds, tac, stmt_of))
    return sessions

def load_sea(users):
    out = {}
    for u in users:
        out[u] = [l.strip() for l in open(SEA + 'User%d' % u) if l.strip()]
    return out

# ---------------------------------------------------------------- rules
# Each statement is reduced to a set of SIGNALS. Arg-level signals need the full
# command line; on SEA (names only) the NAME projection is used, which is the
# conservative (worst-case) reading: e.g. any 'chmod' counts as 'chmod +x'.
DL_NAMES = {'wget', 'curl', 'tftp', 'ftpget', 'lwp-download', 'fetch', 'scp'}
EXEC_NAMES = {'sh', 'bash', 'perl', 'python', 'python3', LOCAL}
# 'hostname' deliberately absent: never used in the corpus, ubiquitous in benign login scripts
DISC_NAMES = {'uname', 'whoami', 'id', 'w', 'lscpu', 'free', 'nproc', 'top', 'uptime',
              'ifconfig', 'lspci', 'dmidecode', 'nvidia-smi', 'getconf', 'df',
              'netstat', 'ss', 'ps', 'who', 'last', 'which'}
PERSIST_NAMES = {'crontab', 'chpasswd', 'passwd', 'useradd', 'adduser', 'usermod',
                 'hive-passwd', 'ssh-keygen'}
EVASION_NAMES = {'history', 'chattr', 'unset', 'setenforce', 'iptables', 'ufw',
                 'SuSEfirewall2', 'shred'}
NET_NAMES = {'nc', 'ncat', 'netcat', 'socat'}
IMPACT_NAMES = {'pkill', 'killall', 'reboot', 'cfgmtd', 'xmrig'}

RX = {
    'download': re.compile(r'\b(wget|curl|tftp|ftpget|lwp-download|fetch)\b|scp +-t\b|/dev/tcp/|urlopen|urllib'),
    'chmodx': re.compile(r'\bchmod +(-R +)?([+ugoa]*\+x|[0-7]?[75][0-7][0-7])\b'),
    'exec_local': re.compile(r'(^|\s|-c\s+)(\./|/(tmp|var/tmp|dev/shm)/)\S+|\b(sh|bash)\s+[\w./\-]+\.sh\b|base64 +-d.*\|\s*(ba)?sh'),
    'disc_arg': re.compile(r'/proc/(cpuinfo|meminfo|version)|/etc/(issue|os-release|passwd)\b|crontab +-l|\bip +a(ddr)?\b'),
    'persist_arg': re.compile(r'authorized_keys|\.ssh\b|rc\.local|/etc/init\.d|systemctl +enable|/etc/cron|crontab +(?!-l)\S|\.bashrc|\.profile|(useradd|adduser|usermod)\b|chpasswd|\|\s*passwd|echo .*\bpasswd\b'),
    'evasion_arg': re.compile(r'history +-c|HISTFILE|HISTSIZE=0|\.bash_history|rm +-r?f +/var/log|/var/log/(wtmp|btmp|lastlog|secure|auth)|\bchattr\b|setenforce +0|iptables +-F|ufw +disable|SuSEfirewall2 +stop|>\s*/dev/null 2>&1 *&$'),
    'ip_url': re.compile(r'(https?|ftp|tftp)://\d{1,3}(\.\d{1,3}){3}|\b(tftp|ftpget)\b.*\b\d{1,3}(\.\d{1,3}){3}\b'),
    'file_drop': re.compile(r'^C0[0-7]{3} \d+ \S+$|(\bcat\b|\btee\b|\bdd\b.*\bof=|>)\s*/(usr/(local/)?s?bin|usr/libexec|s?bin|lib|etc/init\.d)/|\btar +-?P\w*\s+-\s*$'),
    'hex_echo': re.compile(r'\b(echo|printf)\b.*(\\\\?x[0-9a-fA-F]{2}.*){8}'),
    'decode': re.compile(r'\bbase64 +(-d|--decode)\b|\bxxd +-r\b|openssl +enc +-d'),
    'exec_tmp': re.compile(r'^(\S*=\S+\s+)*(sudo\s+|nohup\s+)?/(tmp|var/tmp|dev/shm)/\S+|^(\S*=\S+\s+)*(sudo\s+|nohup\s+)?\S*/\.[\w.\-]+/\S+'),
    'impact_arg': re.compile(r'\bpkill\b|\bkillall\b|kill +-9|xmrig|stratum\+tcp|miner|\breboot\b|cfgmtd|service +\S+ +stop'),
}

def signals(stmt, name_only=False):
    """Signals for one simple command. name_only: SEA projection (stmt == name)."""
    n = stmt if name_only else cmd_name(stmt)
    n8 = n[:SEA_TRUNC]
    def has(names):
        return n in names or (name_only and n8 in {x[:SEA_TRUNC] for x in names})
    s = set()
    if n[:SEA_TRUNC] in FILTERS:
        s.add('filter')
    if name_only:
        if has(DL_NAMES): s.add('download')
        if n == 'base64': s.add('decode')
        if has(NET_NAMES): s.add('netcat')
        if has(DL_NAMES - {'scp'}): s.add('ip_download')   # worst case: every URL is a raw IP
        if n == 'chmod': s.add('chmodx')
        if has(EXEC_NAMES): s.add('exec')
        if has(DISC_NAMES): s.add('disc:' + n8)
        if has(PERSIST_NAMES): s.add('persist')
        if has(EVASION_NAMES): s.add('evasion')
        if has(IMPACT_NAMES): s.add('impact')
        return s
    if RX['download'].search(stmt) or n in DL_NAMES - {'scp'}: s.add('download')
    if 'download' in s and RX['ip_url'].search(stmt): s.add('ip_download')
    if RX['file_drop'].search(stmt): s.add('drop')
    if RX['hex_echo'].search(stmt): s.add('hex_echo')
    if RX['decode'].search(stmt): s.add('decode')
    if RX['exec_tmp'].search(stmt): s.add('exec_tmp')
    if n in NET_NAMES: s.add('netcat')
    if RX['chmodx'].search(stmt): s.add('chmodx')
    if n in EXEC_NAMES or RX['exec_local'].search(stmt): s.add('exec')
    if n in DISC_NAMES: s.add('disc:' + n)
    m = RX['disc_arg'].search(stmt)
    if m: s.add('disc:' + m.group(0))
    if n in PERSIST_NAMES or RX['persist_arg'].search(stmt):
        if not (n == 'crontab' and '-l' in stmt): s.add('persist')
    if n in EVASION_NAMES or RX['evasion_arg'].search(stmt): s.add('evasion')
    if n in IMPACT_NAMES or RX['impact_arg'].search(stmt): s.add('impact')
    return s

FILTERS = {'grep', 'egrep', 'fgrep', 'awk', 'nawk', 'gawk', 'sed', 'head', 'tail', 'wc', 'sort',
           'uniq', 'cut', 'tr', 'more', 'less', 'cat', 'xargs', 'tee'}   # pipeline filters: don't advance windows
DL_EXEC_WIN = 5      # download ... chmod+x / exec within 5 simple commands
DROP_EXEC_WIN = 3    # chmod +x ... exec of local file within 3
DISC_WIN, DISC_K = 5, 3   # >=3 distinct discovery signals in 5 consecutive commands
RULES = ['ip_download', 'file_drop', 'hex_echo', 'decode_exec', 'exec_tmp', 'netcat', 'dl_exec', 'drop_exec', 'persistence', 'discovery_burst', 'defense_evasion', 'impact']

def run_rules(sig_stream):
    """sig_stream: list of signal sets. returns {rule: first index where it fired}."""
    fired = {}
    last = {}
    for i, s in enumerate(sig_stream):
        for k in ('download', 'chmodx', 'exec'):
            if k in s:
                last[k] = i
        if 'dl_exec' not in fired and ('chmodx' in s or 'exec' in s) and \
                'download' in last and i - last['download'] < DL_EXEC_WIN:
            fired['dl_exec'] = i
        if 'drop_exec' not in fired and 'exec' in s and 'chmodx' in last and \
                i - last['chmodx'] < DROP_EXEC_WIN:
            fired['drop_exec'] = i
        if 'decode' in s:
            last['decode'] = i
        if 'decode_exec' not in fired and 'exec' in s and 'decode' in last and i - last['decode'] < DROP_EXEC_WIN:
            fired['decode_exec'] = i
        for sig in ('hex_echo', 'exec_tmp', 'netcat'):
            if sig not in fired and sig in s:
                fired[sig] = i
        if 'ip_download' not in fired and 'ip_download' in s:
            fired['ip_download'] = i
        if 'file_drop' not in fired and 'drop' in s:
            fired['file_drop'] = i
        if 'persistence' not in fired and 'persist' in s:
            fired['persistence'] = i
        if 'defense_evasion' not in fired and 'evasion' in s:
            fired['defense_evasion'] = i
        if 'impact' not in fired and 'impact' in s:
            fired['impact'] = i
        if 'discovery_burst' not in fired:
            win = set(); k = 0; j = i
            while j >= 0 and k < DISC_WIN:          # last DISC_WIN non-filter commands
                win |= {x for x in sig_stream[j] if x.startswith('disc:')}
                k += 0 if 'filter' in sig_stream[j] else 1
                j -= 1
            if len(win) >= DISC_K:
                fired['discovery_burst'] = i
    return fired

# ---------------------------------------------------------------- table
def build_table(sessions, benign_cmds):
    tmpl = collections.defaultdict(set)      # cmd -> set of session templates
    cnt = collections.Counter(); sess = collections.Counter()
    tac = collections.defaultdict(collections.Counter)
    total = 0
    for cmds, tacs, _ in sessions:
        names = [cmd_name(c) for c in cmds]
        template = tuple(names)               # dedups sessions differing only in args
        for n, t in zip(names, tacs):
            cnt[n] += 1; total += 1
            tac[n][t or 'Unlabelled'] += 1
            tmpl[n].add(template)
        for n in set(names):
            sess[n] += 1
    bcnt = collections.Counter(c[:SEA_TRUNC] for c in benign_cmds)
    btot = len(benign_cmds)
    ok = re.compile(r'^([a-z][a-z0-9._+\-]*|%s)$' % re.escape(LOCAL))
    SHELL_KW = {'done', 'while', 'for', 'if', 'fi', 'then', 'do', 'enable', 'shell', 'system'}
    cands = [n for n in cnt if ok.match(n) and n not in SHELL_KW and len(tmpl[n]) >= MIN_TEMPLATES]
    cands.sort(key=lambda n: (-len(tmpl[n]), -cnt[n], n))
    table = {}
    for n in cands[:MAX_ENTRIES]:
        a = cnt[n] / total
        b = bcnt.get(n[:SEA_TRUNC], 0) / btot
        dom, dn = tac[n].most_common(1)[0]
        table[n] = {
            'tactic': dom,
            'tactic_share': round(dn / cnt[n], 2),
            'templates': len(tmpl[n]),
            'sessions': sess[n],
            'attack_rate': round(a, 5),
            'benign_rate': round(b, 5),
            # log-odds weight attack vs benign reference, clipped
            'w': round(max(-3.0, min(5.0, math.log((a + 1e-4) / (b + 1e-4)))), 2),
        }
        if n in BUILTINS:       # SEA logs processes only: builtins have no benign rate
            table[n]['builtin'] = True
            table[n]['w'] = 0.0
    return table, total

# table-score rule: sum of positive weights of DISTINCT table commands in a window
TS_WIN = 5
def table_score_stream(names, table):
    best = 0.0; first = None
    for i in range(len(names)):
        win = set(); k = 0; j = i
        while j >= 0 and k < TS_WIN:                  # last TS_WIN non-filter commands
            win.add(names[j]); k += names[j][:SEA_TRUNC] not in FILTERS; j -= 1
        sc = sum(max(0.0, table[n]['w']) for n in win if n in table)
        if sc > best:
            best = sc
        yield i, sc

def first_cross(names, table, thr):
    for i, sc in table_score_stream(names, table):
        if sc >= thr:
            return i
    return None

# ---------------------------------------------------------------- main
def blocks(cmds, size=100):
    return [cmds[i:i + size] for i in range(0, len(cmds) - size + 1, size)]

def main():
    sessions = load_corpus()
    ref_users, eval_users = list(range(1, 13)), list(range(13, 26))
    sea_ref = load_sea(ref_users); sea_eval = load_sea(eval_users)
    ref_cmds = [c for u in ref_users for c in sea_ref[u]]
    table, total = build_table(sessions, ref_cmds)

    # table-score threshold: smallest T with <=1% of REFERENCE benign blocks firing
    ref_blocks = [b for u in ref_users for b in blocks(sea_ref[u])]
    eval_blocks = [b for u in eval_users for b in blocks(sea_eval[u])]
    tbl8 = {}
    for n, e in table.items():                 # SEA names are truncated to 8 chars
        tbl8.setdefault(n[:SEA_TRUNC], e)
    def blk_max(b, tb):
        return max(sc for _, sc in table_score_stream(b, tb))
    ref_scores = sorted(blk_max(b, tbl8) for b in ref_blocks)
    thr = ref_scores[int(0.99 * len(ref_scores))] + 0.01
    thr = max(thr, 3.0)

    # ------------- corpus hit rates
    def stats(sel):
        """fraction of sessions with >=1 rule firing within the first 5 / 10 top-level
        statements (and within first 5/10 simple commands)"""
        per_rule = collections.Counter(); c = collections.Counter()
        for cmds, tacs, stmt_of in sel:
            fired = run_rules([signals(x) for x in cmds])
            ft = first_cross([cmd_name(x) for x in cmds], table, thr)
            for r, i in fired.items():
                if stmt_of[i] < 10: per_rule[r] += 1
            f = min(fired.values()) if fired else None
            fc = min([x for x in (f, ft) if x is not None], default=None)
            for tag, idx in (('rules', f), ('table', ft), ('either', fc)):
                if idx is None: continue
                c[tag + '_all'] += 1
                for k in (5, 10):
                    c['%s_s%d' % (tag, k)] += stmt_of[idx] < k
                    c['%s_c%d' % (tag, k)] += idx < k
        N = len(sel)
        pct = lambda x: round(100.0 * x / N, 1)
        return N, {r: pct(per_rule[r]) for r in RULES}, {k: pct(v) for k, v in sorted(c.items())}
    seen = set(); dedup = []
    for cmds, tacs, so in sessions:
        key = tuple(cmd_name(x) for x in cmds)
        if key not in seen:
            seen.add(key); dedup.append((cmds, tacs, so))
    nonharm = [x for x in sessions if any(t not in (None, 'Harmless') for t in x[1])]
    print('corpus: %d sessions, %d simple commands, %d distinct command-name templates' % (len(sessions), total, len(dedup)))
    print('hit%%: per-rule within first 10 statements; then {rules|table|either}_{s5,s10: first 5/10 statements; c5,c10: first 5/10 simple cmds; all}')
    for nm, sel in (('all', sessions), ('non-harmless', nonharm), ('dedup-templates', dedup)):
        N, pr, cc = stats(sel)
        print('  %-16s N=%d' % (nm, N), pr); print('      ', cc)

    # ------------- SEA false positives
    def sea_fp(bl):
        per = collections.Counter(); anyr = ts = 0
        for b in bl:
            fired = run_rules([signals(c, name_only=True) for c in b])
            for r in fired: per[r] += 1
            anyr += bool(fired)
            ts += blk_max(b, tbl8) >= thr
        N = len(bl)
        return N, {r: round(100 * per[r] / N, 2) for r in RULES}, round(100 * anyr / N, 2), round(100 * ts / N, 2)
    print('SEA 100-cmd blocks FP%%: N, per-rule, any-rule, table-score>=%.2f' % thr)
    print('  ref users 1-12  ', *sea_fp(ref_blocks))
    print('  eval users 13-25', *sea_fp(eval_blocks))
    # which discovery names trigger on SEA
    dn = collections.Counter()
    for b in eval_blocks + ref_blocks:
        for c in b:
            s = signals(c, True)
            for x in s:
                if x.startswith('disc:'): dn[x] += 1
    print('  SEA discovery-signal counts:', dn.most_common(12))

    model = {
        'schema': {
            'normalise': 'split line into simple commands on ; | && || ; name = first word after VAR=val, '
                         'sudo/nohup/busybox/env/exec/timeout/nice/command/time/xargs; basename; '
                         './x or /tmp|/var/tmp|/dev/shm|/run|/mnt/x -> "<local-exec>"',
            'commands': 'name -> {tactic: dominant LogPrecis tactic of the commands with this name, tactic_share, '
                        'templates: #distinct session templates (command-name sequences) containing it, sessions, '
                        'attack_rate: share of corpus simple commands, benign_rate: share of SEA users 1-12 '
                        'commands (8-char truncated name), w: clip(ln((attack_rate+1e-4)/(benign_rate+1e-4)),-3,5); shell builtins (cd, exit, unset, history, ...) get w=0 and builtin=true because SEA (process accounting) cannot give them a benign rate}',
            'table_score': 'sum of max(0,w) over DISTINCT table names in the last %d non-filter simple commands (filters included in the window); alarm if >= threshold' % TS_WIN,
            'rules': 'signal sets per simple command (name lists + regexes below), combined by the stateful rules',
        },
        'derivation': 'python3 attack_model.py: commands with >=%d templates, valid lowercase name, no shell keyword, '
                      'top %d by template support; threshold = 99th pct of SEA users 1-12 block max score (min 3.0)'
                      % (MIN_TEMPLATES, MAX_ENTRIES),
        'table_score_threshold': round(thr, 2),
        'table_score_window': TS_WIN,
        'commands': table,
        'signals': {
            'download_names': sorted(DL_NAMES), 'exec_names': sorted(EXEC_NAMES),
            'discovery_names': sorted(DISC_NAMES), 'persistence_names': sorted(PERSIST_NAMES),
            'evasion_names': sorted(EVASION_NAMES), 'impact_names': sorted(IMPACT_NAMES),
            'regex': {k: v.pattern for k, v in RX.items()},
        },
        'rules': {
            'dl_exec': 'download signal, then chmodx or exec signal within %d simple commands (same command counts)' % DL_EXEC_WIN,
            'drop_exec': 'chmodx then exec (sh/bash/perl/python/<local-exec>) within %d simple commands' % DROP_EXEC_WIN,
            'persistence': 'any persist signal (crontab other than -l, authorized_keys/.ssh, chpasswd, piped passwd, useradd, rc.local, init.d, systemctl enable, .bashrc)',
            'discovery_burst': '>= %d DISTINCT discovery signals within the last %d non-filter simple commands (filters: %s)' % (DISC_K, DISC_WIN, ' '.join(sorted(FILTERS))),
            'hex_echo': 'echo/printf with >= 8 \\xHH escapes (binary dropper / busybox probe)',
            'decode_exec': 'base64 -d / xxd -r / openssl enc -d then sh|bash|perl|python within %d simple commands' % DROP_EXEC_WIN,
            'exec_tmp': 'command word is a path under /tmp,/var/tmp,/dev/shm or inside a hidden directory (/.x/)',
            'netcat': 'nc/ncat/netcat/socat invoked',
            'ip_download': 'download (wget/curl/tftp/ftpget/...) whose URL/host is a raw IPv4 address',
            'file_drop': 'scp sink header "C0755 <size> <name>", cat/tee/dd/> into /usr/(local/)bin,/usr/libexec,/bin,/sbin,/lib,/etc/init.d, tar -P from stdin',
            'defense_evasion': 'history -c, HISTFILE, .bash_history, rm -rf /var/log, chattr, setenforce 0, iptables -F, ufw disable',
            'impact': 'pkill/killall/kill -9, miner strings (xmrig, stratum+tcp), reboot, service X stop',
        },
    }
    json.dump(model, open(OUT, 'w'), indent=1)
    print('table entries:', len(table), '-> wrote', OUT, os.path.getsize(OUT), 'bytes')
    return model

if __name__ == '__main__':
    main()
