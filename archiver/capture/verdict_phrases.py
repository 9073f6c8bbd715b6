"""The words of pages that stand in for a cited one, as sites write them: data only, matched by
verdict.py. Every phrase is written as verdict.py compares it: lower case, its punctuation
removed but for the apostrophe ('), without a leading "Oops!" (INTERJECTIONS) or an "Error 404"
(ERROR_WORDS beside a 404 or 410), which are taken off the page's words before they are compared.

A title segment or first heading that is one of NOT_FOUND_PHRASES says the page is not there;
so does any of them in the text of a very short page. English has a grammar of its own in
verdict.py ("page not found", "this article no longer exists", ...); its entries here are the
sentences that grammar does not cover and the words of platforms whose cited thing is gone
(an account, a video, a post): the page is there, what was cited is not.
"""

from __future__ import annotations

NOT_FOUND_PHRASES: dict[str, tuple[str, ...]] = {
    "en": ("we can't find the page you're looking for", "we couldn't find the page you're looking for",
           "we couldn't find that page", "the page you're looking for doesn't exist",
           "the page you are looking for does not exist", "the page you requested could not be found",
           "the page you requested was not found", "the requested page could not be found",
           "account suspended", "this account has been suspended", "this account doesn't exist",
           "this account does not exist", "this content isn't available right now", "this content isn't available",
           "this page isn't available", "video unavailable", "this video is unavailable",
           "this video isn't available anymore", "this video is no longer available", "this post is unavailable",
           "this post was deleted", "this channel does not exist",
           "this page doesn't exist try searching for something else"),
    "fr": ("page introuvable", "page non trouvée", "page inexistante", "cette page n'existe pas",
           "cette page n'existe plus", "la page n'existe pas", "la page demandée n'existe pas",
           "la page que vous recherchez n'existe pas", "la page que vous cherchez n'existe pas",
           "la page demandée est introuvable", "la page que vous recherchez est introuvable",
           "cette page est introuvable", "article introuvable", "contenu introuvable"),
    "de": ("seite nicht gefunden", "seite wurde nicht gefunden", "die seite wurde nicht gefunden",
           "die angeforderte seite wurde nicht gefunden", "die gesuchte seite wurde nicht gefunden",
           "diese seite existiert nicht", "die seite existiert nicht", "die seite existiert nicht mehr",
           "die angeforderte seite existiert nicht", "seite existiert nicht", "seite nicht verfügbar",
           "diese seite ist leider nicht verfügbar", "nicht gefunden", "artikel nicht gefunden"),
    "es": ("página no encontrada", "pagina no encontrada", "la página no existe", "esta página no existe",
           "la página que buscas no existe", "la página que buscas no está disponible",
           "la página solicitada no existe", "no se encontró la página", "no hemos encontrado la página",
           "no encontramos la página que buscas", "página no disponible", "contenido no encontrado"),
    "pt": ("página não encontrada", "pagina nao encontrada", "a página não existe", "esta página não existe",
           "a página que você procura não existe", "a página que procura não existe",
           "a página solicitada não foi encontrada", "página indisponível", "conteúdo não encontrado"),
    "it": ("pagina non trovata", "pagina non esistente", "la pagina non esiste", "questa pagina non esiste",
           "la pagina richiesta non esiste", "la pagina che stai cercando non esiste",
           "la pagina richiesta non è stata trovata", "pagina non disponibile", "contenuto non trovato"),
    "nl": ("pagina niet gevonden", "deze pagina bestaat niet", "de pagina bestaat niet",
           "de pagina bestaat niet meer", "de opgevraagde pagina bestaat niet", "de pagina die je zoekt bestaat niet",
           "de pagina kan niet worden gevonden", "pagina bestaat niet", "niet gevonden"),
    "ru": ("страница не найдена", "страница не существует", "такой страницы не существует",
           "запрашиваемая страница не найдена", "запрашиваемая страница не существует", "страница удалена",
           "запись не найдена", "материал не найден", "статья не найдена", "не найдено"),
    "uk": ("сторінку не знайдено", "сторінка не знайдена", "сторінка не існує", "такої сторінки не існує",
           "запитувану сторінку не знайдено", "сторінку видалено", "не знайдено"),
    "pl": ("nie znaleziono strony", "strony nie znaleziono", "strona nie została znaleziona", "strona nie istnieje",
           "ta strona nie istnieje", "nie ma takiej strony", "strona o podanym adresie nie istnieje",
           "nie znaleziono"),
    "tr": ("sayfa bulunamadı", "sayfa bulunamadi", "aradığınız sayfa bulunamadı", "böyle bir sayfa yok",
           "sayfa mevcut değil", "aradığınız sayfa mevcut değil", "içerik bulunamadı", "haber bulunamadı"),
    "ar": ("الصفحة غير موجودة", "الصفحة المطلوبة غير موجودة", "لم يتم العثور على الصفحة",
           "الصفحة التي تبحث عنها غير موجودة", "هذه الصفحة غير موجودة", "الصفحة غير متوفرة"),
    "zh": ("页面不存在", "页面未找到", "页面没有找到", "找不到页面", "页面找不到了", "网页不存在", "找不到网页",
           "您访问的页面不存在", "你访问的页面不存在", "您要访问的页面不存在", "该页面不存在", "文章不存在",
           "頁面不存在", "找不到頁面", "網頁不存在", "找不到網頁", "您要找的頁面不存在"),
    "ja": ("ページが見つかりません", "ページが見つかりませんでした", "お探しのページは見つかりませんでした",
           "お探しのページが見つかりません", "お探しのページは見つかりません", "お探しのページは存在しません",
           "指定されたページは存在しません", "このページは存在しません", "ページが存在しません", "記事が見つかりません"),
}

# Said before the phrase and nothing by themselves: "Oops! That page can't be found."
INTERJECTIONS = ("oops", "whoops", "sorry", "we're sorry", "uh oh", "hmm", "oh no", "ups", "hoppla", "oups",
                 "désolé", "lo sentimos", "vaya", "desculpe", "ops", "ci dispiace", "spiacenti", "oeps", "helaas",
                 "упс", "извините", "ой", "вибачте", "przepraszamy", "üzgünüz", "maalesef", "عذرا", "عذراً", "عفوا",
                 "抱歉", "对不起", "很抱歉", "すみません", "申し訳ありません", "申し訳ございません")

# Beside a status code they are the code's name: "Error 404", "Fehler 404", "404 错误".
ERROR_WORDS = ("error", "http", "fehler", "erreur", "errore", "erro", "fout", "ошибка", "помилка", "błąd", "hata",
               "خطأ", "错误", "錯誤", "エラー")

# The whole text of a page still loading what it shows (an article a script was to fetch): its
# placeholder, in English a grammar of its own in verdict.py ("loading article", "please wait").
LOADING_PHRASES = ("chargement", "chargement en cours", "veuillez patienter", "wird geladen", "lädt", "bitte warten",
                   "cargando", "por favor espere", "espere por favor", "carregando", "aguarde", "caricamento",
                   "caricamento in corso", "attendere", "laden", "bezig met laden", "even geduld", "загрузка",
                   "подождите", "пожалуйста подождите", "завантаження", "ładowanie", "yükleniyor", "جار التحميل",
                   "加载中", "正在加载", "載入中", "読み込み中")

# A cookie or consent prompt: the words it asks about (any one in a page's text, a whole word) and
# the labels of the buttons that answer it (a button's whole label). A short page with both is
# the prompt in place of the content; an article under a consent banner is long, and stays content.
CONSENT_WORDS = ("cookie", "cookies", "consent", "your privacy", "privacy choices", "privacy settings",
                 "before you continue", "personal data", "einwilligung", "datenschutz", "consentement",
                 "vie privée", "consentimiento", "privacidad", "consentimento", "privacidade", "consenso",
                 "toestemming", "согласие", "файлы cookie")
CONSENT_BUTTONS = ("accept", "accept all", "accept all cookies", "accept cookies", "i accept", "agree", "i agree",
                   "agree and continue", "allow all", "allow all cookies", "allow cookies", "reject", "reject all",
                   "reject all cookies", "decline", "decline all", "refuse all", "deny", "necessary cookies only",
                   "only necessary cookies", "tout accepter", "tout refuser", "accepter", "refuser",
                   "accepter et fermer", "alle akzeptieren", "alle ablehnen", "akzeptieren", "ablehnen",
                   "aceptar", "aceptar todo", "rechazar todo", "aceitar", "aceitar tudo", "rejeitar tudo",
                   "accetta", "accetta tutto", "rifiuta tutto", "alles accepteren", "alles weigeren",
                   "accepteren", "принять", "принять все", "отклонить все")
