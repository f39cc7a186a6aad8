"""The HMI's API routers: live data, commands, logins, installer tools."""
