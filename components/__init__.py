"""Component resources of the pgAnalytics Pulumi program (settings, cluster targets, platform,
credentials, release)."""
