"""Texts the admin theme (Unfold) shows that ship without a Chinese translation.

Listed here so that ``makemessages`` keeps them in this app's catalogue
(``locale/zh_Hans/LC_MESSAGES/django.po``), where their Chinese lives; Django merges every
catalogue, so the theme's templates find them. When an Unfold upgrade adds or renames a text,
the browser walk's translation check (tests/console) shows it on the page.
"""

from django.utils.translation import gettext_noop as _

THEME_TEXTS = [
    _("Select record"),
    _("Select action"),
    _("Select action to run"),
    _(
        "Raw passwords are not stored, so there is no way to see this user’s password, but you can change the "
        'password using <a href="{}" class="text-primary-600 dark:text-primary-500">this form</a>.'
    ),
    _("Run"),
    _("After you've created a user, you’ll be able to edit more user options."),
    _("Filters"),
    _("Expand row"),
    _("Welcome back to"),
    _("Type to search"),
    _("You have been successfully logged out from the administration"),
    _("No data"),
    _("More actions"),
    _("All applications"),
    _("True"),
    _("False"),
    _("Apply Filters"),
    _("Select all rows"),
    _("Recent searches"),
    _("No recent searches"),
    _("No results matching your query"),
    _("Loading more results..."),
    _("Cancel"),
    _("Submit"),
    _("Record picture"),
    _("This item will be deleted."),
    _("Click to cancel"),
    _("No results found"),
    _("This page yielded into no results. Create a new item or reset your filters."),
    _("Reset filters"),
    _("Image preview"),
    _("Click to download"),
    _("Go back"),
    _("Previous"),
    _("Next"),
    _("Search apps and models..."),
    _("General"),
    _("Light"),
    _("Dark"),
    _("System"),
    _("Return to site"),
    _("Choose file to upload"),
    _("Toggle password visibility"),
    _("Add row"),
    _("Date"),
    _("Time"),
    _("Select currency"),
]
