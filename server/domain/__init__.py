"""Pure domain rules that every server layer may use: resource sizes, workflow graph planning,
cron schedules and priority time. Nothing here touches the database or imports the rest of the
server."""
