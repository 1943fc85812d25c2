import streamlit as st

st.title("rankings")
st.info("This page is being built.")
