# Locust callers: each simulated user calls Locust's --host and holds the call 2 s, then waits 1 s.
#
#   pip install 'softphone[locust]'
#   softphone answer --auto-answer --null-audio --listen 127.0.0.1:5062 &
#   locust -f "$(softphone examples --path locustfile)" --host sip:bob@127.0.0.1:5062 \
#       --headless --users 20 --spawn-rate 5 --run-time 30s --csv calls
#
# Through a PBX, with an account (the options are softphone load's):
#   locust -f locustfile.py --host sip:bob@pbx.example.com \
#       --sip-options "--user alice --password secret --codec pcmu"
# Over machines: the same command with --master on one, --worker --master-host HOST on others.
# Statistics: INVITE rows by final status (set-up time; failures for non-2xx) and RTP rows
# (MOS x100, loss per mille, jitter ms). Set `scenario = "file.toml"` to run a call-test
# scenario per iteration instead (it reads the host as ${LOCUST_HOST}).
from locust import constant

from softphone.locust import SipUser


class Caller(SipUser):
    wait_time = constant(1)
    duration = 2.0
