#!/bin/sh
# Volume snapshots of the release's data claims (chart: volumeSnapshots; docs/BACKUP_RESTORE.md).
#
# 1. lists the Bound claims of each component in SNAPSHOT_COMPONENTS by the labels the chart
#    puts on them (app.kubernetes.io/name, instance, component); none at all is an error;
# 2. creates one VolumeSnapshot per claim, <claim>-<UTC stamp>, of class SNAPSHOT_CLASS;
# 3. waits up to SNAPSHOT_READY_TIMEOUT for every one to be ready to use; if one is not, exits
#    non-zero and prunes nothing (the Job fails, visible in its status);
# 4. per claim, deletes the snapshots this script made that are older than the newest
#    SNAPSHOT_KEEP ready ones.
# Needs kubectl and a POSIX shell; tests/cluster/test_volume_snapshots.py runs this file.
set -eu
export LC_ALL=C

: "${SNAPSHOT_NAMESPACE:?namespace of the release}"
: "${SNAPSHOT_APP:?app.kubernetes.io/name of the release}"
: "${SNAPSHOT_RELEASE:?release name (app.kubernetes.io/instance)}"
: "${SNAPSHOT_COMPONENTS:?components whose claims are snapshotted}"
: "${SNAPSHOT_CLASS:?VolumeSnapshotClass}"
: "${SNAPSHOT_KEEP:?snapshots kept per claim}"
: "${SNAPSHOT_READY_TIMEOUT:=10m}"

# Marks the snapshots this script made (and which claim each is of); pruning touches no other.
CLAIM_LABEL=snapshots.pganalytics.io/claim

case "$SNAPSHOT_KEEP" in
  '' | *[!0-9]* | 0*) echo "SNAPSHOT_KEEP must be a whole number of at least 1 (got '$SNAPSHOT_KEEP')" >&2; exit 2 ;;
esac

k() { kubectl --namespace "$SNAPSHOT_NAMESPACE" "$@"; }
release_selector="app.kubernetes.io/name=$SNAPSHOT_APP,app.kubernetes.io/instance=$SNAPSHOT_RELEASE"

# --- 1. the claims ---------------------------------------------------------------------------
claims=""   # lines "<component> <claim>"
for component in $SNAPSHOT_COMPONENTS; do
  found=$(k get persistentvolumeclaims -l "$release_selector,app.kubernetes.io/component=$component" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.phase}{"\n"}{end}')
  for line in $(printf '%s\n' "$found" | awk 'NF { print $1 "=" $2 }'); do
    claim=${line%%=*}
    phase=${line#*=}
    if [ "$phase" != Bound ]; then
      echo "skip: claim $claim of $component is $phase, not Bound (nothing to snapshot yet)"
      continue
    fi
    # The claim name is a label value of its snapshots: at most 63 characters.
    if [ "${#claim}" -gt 63 ]; then
      echo "claim $claim of $component: name longer than 63 characters, which cannot label its snapshots; use a shorter claim name" >&2
      exit 1
    fi
    claims="$claims$component $claim
"
  done
done
if [ -z "$claims" ]; then
  echo "no Bound claim of components '$SNAPSHOT_COMPONENTS' of release $SNAPSHOT_RELEASE in namespace $SNAPSHOT_NAMESPACE (selector $release_selector,app.kubernetes.io/component=<component>); check volumeSnapshots.components and the components' persistence" >&2
  exit 1
fi

# --- 2. one snapshot per claim ---------------------------------------------------------------
stamp=$(date -u +%Y%m%d%H%M%S)
printf '%s' "$claims" | while read -r component claim; do
  name="$claim-$stamp"
  echo "create: volumesnapshot $name of claim $claim ($component), class $SNAPSHOT_CLASS"
  k create -f - <<MANIFEST
apiVersion: snapshot.storage.k8s.io/v1
kind: VolumeSnapshot
metadata:
  name: $name
  labels:
    app.kubernetes.io/name: "$SNAPSHOT_APP"
    app.kubernetes.io/instance: "$SNAPSHOT_RELEASE"
    app.kubernetes.io/component: "$component"
    $CLAIM_LABEL: "$claim"
spec:
  volumeSnapshotClassName: "$SNAPSHOT_CLASS"
  source:
    persistentVolumeClaimName: "$claim"
MANIFEST
done
created=$(printf '%s' "$claims" | awk -v s="$stamp" '{ printf " volumesnapshot/%s-%s", $2, s }')

# --- 3. wait until every snapshot is ready -----------------------------------------------------
echo "wait: up to $SNAPSHOT_READY_TIMEOUT for$created to be ready to use"
# shellcheck disable=SC2086  # one argument per snapshot
if ! k wait --for=jsonpath='{.status.readyToUse}'=true --timeout="$SNAPSHOT_READY_TIMEOUT" $created; then
  echo "not ready within $SNAPSHOT_READY_TIMEOUT; nothing pruned. Status of the snapshots:" >&2
  # shellcheck disable=SC2086
  k get $created -o custom-columns='NAME:.metadata.name,READY:.status.readyToUse,ERROR:.status.error.message' >&2 || true
  exit 1
fi

# --- 4. prune per claim ------------------------------------------------------------------------
for claim in $(printf '%s' "$claims" | awk '{ print $2 }'); do
  # Names sort by time: <claim>-<YYYYmmddHHMMSS>.
  mine=$(k get volumesnapshots -l "$release_selector,$CLAIM_LABEL=$claim" \
    -o jsonpath='{range .items[*]}{.metadata.name}{" "}{.status.readyToUse}{"\n"}{end}' | sort)
  # Everything older than the SNAPSHOT_KEEP-th newest ready one (a snapshot of a failed run
  # included); nothing while fewer than SNAPSHOT_KEEP are ready.
  old=$(printf '%s\n' "$mine" | awk -v keep="$SNAPSHOT_KEEP" '
    BEGIN { n = 0 }
    NF { name[n] = $1; ready[n] = ($2 == "true"); n++ }
    END {
      cut = -1
      for (i = n - 1; i >= 0 && cut < 0; i--) if (ready[i] && ++seen == keep) cut = i
      for (i = 0; i < cut; i++) print name[i]
    }')
  if [ -n "$old" ]; then
    echo "prune: claim $claim keeps the newest $SNAPSHOT_KEEP ready snapshots, deletes:" $old
    # Each through the label selector of this script's snapshots: a snapshot someone else made
    # with the same name pattern is never deleted (the Role cannot narrow delete by label).
    for name in $old; do
      k delete volumesnapshots -l "$release_selector,$CLAIM_LABEL=$claim" \
        --field-selector "metadata.name=$name" --wait=false
    done
  else
    echo "prune: claim $claim has nothing beyond the newest $SNAPSHOT_KEEP"
  fi
done
echo "done: snapshots$created ready"
